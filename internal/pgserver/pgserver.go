package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// The role that logs in over the loopback port with a password.
const (
	PasswordRole = "sealpost_test"
	Password     = "pgtest-Secret-7f3a9c" // distinctive, so a test can look for it in error text
)

// ErrNotInstalled: initdb and postgres were not found.
var ErrNotInstalled = errors.New("PostgreSQL not installed: no initdb and postgres in /usr/lib/postgresql/*/bin or on PATH")

// Server is a private PostgreSQL.
type Server struct {
	dir     string // data directory's parent, holding the unix socket
	port    int
	bin     string
	cred    *syscall.Credential
	durable bool
	log     *syncBuffer

	pmu  sync.Mutex // guards cmd and done, which Resume replaces
	cmd  *exec.Cmd
	done chan struct{} // closed when postgres exits

	mu sync.Mutex // serialises CREATE DATABASE
	n  int
}

// Options change how the server runs.
type Options struct {
	// Durable keeps PostgreSQL's defaults for fsync, synchronous_commit and full_page_writes, so
	// that a benchmark counts the commits' flushes as a production server makes them; otherwise
	// they are off (the data is thrown away).
	Durable bool
}

// Start finds the binaries (ErrNotInstalled when missing), initialises a new data directory
// under the system's temporary directory and starts postgres on it, not durable; Stop stops it.
func Start() (*Server, error) { return StartWith(Options{}) }

// StartWith is Start with opts.
func StartWith(opts Options) (*Server, error) {
	bin, why := findBin()
	if bin == "" {
		return nil, fmt.Errorf("%w (%s)", ErrNotInstalled, why)
	}
	return start(bin, opts)
}

// CreateDatabase creates an empty database owned by PasswordRole and returns its name
// (prefix_N, N counting the server's databases).
func (s *Server) CreateDatabase(prefix string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	name := fmt.Sprintf("%s_%d", prefix, s.n)
	return name, s.admin(fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, name, PasswordRole))
}

// DropDatabase drops database name, closing whatever connections are left to it.
func (s *Server) DropDatabase(name string) error {
	// WITH (FORCE): a pool left open must not keep the database.
	return s.admin(fmt.Sprintf(`DROP DATABASE %s WITH (FORCE)`, name))
}

// findBin returns the directory holding initdb and postgres, or "" and why.
func findBin() (dir, why string) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	for _, d := range dirs {
		if executable(filepath.Join(d, "initdb")) && executable(filepath.Join(d, "postgres")) {
			return d, ""
		}
	}
	return "", "no initdb and postgres in /usr/lib/postgresql/*/bin or on PATH"
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// credential is who initdb and postgres run as: nil (ourselves) unless we
// are root, when it is Debian's postgres user.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and initdb refuses root: no postgres user to run it as (%w)", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

func start(bin string, opts Options) (*Server, error) {
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sealpost-pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin, cred: cred, durable: opts.Durable, log: &syncBuffer{}}
	if err := s.initdb(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	if err := s.run(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.setup(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) initdb() error {
	if cred := s.cred; cred != nil {
		if err := os.Chown(s.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	cmd := exec.Command(filepath.Join(s.bin, "initdb"), "-D", filepath.Join(s.dir, "data"), "-U", "postgres",
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	return nil
}

// run starts postgres on the data directory and s.port and waits until it answers.
func (s *Server) run() error {
	args := []string{"-D", filepath.Join(s.dir, "data"),
		"-k", s.dir, "-p", strconv.Itoa(s.port), "-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB"}
	if !s.durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.pmu.Lock()
	s.cmd, s.done = cmd, done
	s.pmu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(context.Background(), s.DSN("postgres"))
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("postgres exited at start: %v\n%s", cmd.ProcessState, s.log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.halt()
			return fmt.Errorf("postgres did not answer within 30s: %v\n%s", err, s.log)
		}
	}
}

// setup creates PasswordRole.
func (s *Server) setup() error {
	return s.admin(fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, PasswordRole, Password))
}

// admin runs sql as postgres on the socket.
func (s *Server) admin(sql string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// Stop shuts the server down (fast: SIGINT, then SIGKILL after 10 s) and
// removes its directory.
func (s *Server) Stop() error {
	defer os.RemoveAll(s.dir)
	return s.halt()
}

// Halt shuts the server down as Stop does but keeps its data directory, so
// that Resume can start it again with the data it had: a database server
// that goes away under its clients and comes back. Halting a halted server
// does nothing.
func (s *Server) Halt() error { return s.halt() }

// Resume starts a halted server again on its data directory, its unix
// socket and its loopback port, and waits until it answers. Resuming a
// running server does nothing.
func (s *Server) Resume() error {
	s.pmu.Lock()
	done := s.done
	s.pmu.Unlock()
	select {
	case <-done:
		return s.run()
	default:
		return nil
	}
}

func (s *Server) halt() error {
	s.pmu.Lock()
	cmd, done := s.cmd, s.done
	s.pmu.Unlock()
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		return errors.New("postgres did not stop within 10s; killed")
	}
}

// DSN is the connection string of database db as postgres on the unix
// socket (trust).
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", s.dir, s.port, db)
}

// PasswordDSN is the connection string of database db as PasswordRole with
// password, over the loopback port.
func (s *Server) PasswordDSN(db, password string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=disable", s.port, PasswordRole, password, db)
}

// Port is the server's loopback TCP port.
func (s *Server) Port() int { return s.port }

// syncBuffer is postgres's output, written by exec's copying goroutine and
// read for error messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
