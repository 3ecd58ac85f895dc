package ops

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sealpost/sealpost/address"
	"github.com/sealpost/sealpost/queue"
)

// Spool is the queue control the ops listener offers; *queue.Spool implements it.
type Spool interface {
	List() ([]queue.Info, error)
	Get(id string) (queue.Info, error)
	Retry(id string) error
	Delete(id string) error
	Flush()
	// Corrupt lists what the spool set aside as failing its checks; CorruptCount counts it by
	// entry, cheaply; CorruptDir is where it is.
	Corrupt() ([]queue.CorruptEntry, error)
	CorruptCount() (int, error)
	CorruptDir() string
}

// DefaultQueue is the spool queue control acts on when the request names none.
const DefaultQueue = "outbound"

// Entry is a queue entry as the ops listener shows it: recipients' domains, never their
// addresses, and nothing of the message.
type Entry struct {
	ID           string    `json:"id"`
	Class        string    `json:"class"`
	SenderDomain string    `json:"sender_domain"` // "" for the null sender (a DSN)
	Domains      []string  `json:"domains"`       // distinct recipient domains, in recipient order
	Created      time.Time `json:"created"`
	Expires      time.Time `json:"expires"`
	NextAttempt  time.Time `json:"next_attempt"`
	Attempts     int       `json:"attempts"` // the most any recipient has had
	Pending      int       `json:"pending"`
	Delivered    int       `json:"delivered"`
	Failed       int       `json:"failed"`
	Size         int       `json:"size"` // bytes of the protected message
	// Recipients is set by GET /queue/{id} only.
	Recipients []Recipient `json:"recipients,omitempty"`
}

// Recipient is one recipient's delivery state, by domain.
type Recipient struct {
	Domain   string `json:"domain"`
	Status   string `json:"status"` // pending, delivered, failed
	Attempts int    `json:"attempts"`
	// LastError is the next hop's last answer, with any address in it reduced to its domain.
	LastError string `json:"last_error,omitempty"`
}

// EntryList is the answer of GET /queue.
type EntryList struct {
	Queue   string  `json:"queue"`
	Entries []Entry `json:"entries"`
}

// CorruptList is the answer of GET /queue/corrupt: what the spool set aside because it failed its
// checks (damaged, truncated, unreadable, wrong mode), neither delivered nor deleted.
type CorruptList struct {
	Queue   string         `json:"queue"`
	Dir     string         `json:"dir"` // where the files are
	Entries []CorruptEntry `json:"entries"`
}

// CorruptEntry is what was set aside under one queue ID.
type CorruptEntry struct {
	ID    string        `json:"id"`
	Files []CorruptFile `json:"files"`
}

// CorruptFile is one file set aside: its name in the directory, and when and why it was moved.
type CorruptFile struct {
	Name     string    `json:"name"`
	Size     int64     `json:"size"`
	SetAside time.Time `json:"set_aside"` // zero when the note is missing
	Problem  string    `json:"problem"`
}

// Action is the answer of the queue control requests that change something.
type Action struct {
	Queue  string `json:"queue"`
	ID     string `json:"id,omitempty"`
	Action string `json:"action"` // "retry", "delete", "flush"
}

func (s *Server) routeQueue(mux *http.ServeMux) {
	mux.HandleFunc("GET /queue", s.queueList)
	mux.HandleFunc("GET /queue/corrupt", s.queueCorrupt)
	mux.HandleFunc("GET /queue/{id}", s.queueShow)
	mux.HandleFunc("POST /queue/{id}/retry", s.queueRetry)
	mux.HandleFunc("DELETE /queue/{id}", s.queueDelete)
	mux.HandleFunc("POST /queue/flush", s.queueFlush)
}

// spool returns the spool the request names (?queue=), answering 404 itself when there is none.
func (s *Server) spool(w http.ResponseWriter, r *http.Request) (string, Spool, bool) {
	name := r.URL.Query().Get("queue")
	if name == "" {
		name = DefaultQueue
	}
	sp, ok := s.spools[name]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no queue %q (queues: %s)", printable(name), strings.Join(s.spoolNames(), ", ")))
		return "", nil, false
	}
	return name, sp, true
}

func (s *Server) spoolNames() []string {
	names := make([]string, 0, len(s.spools))
	for n := range s.spools {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// flushPath: "flush" is never a queue ID, so GET or DELETE /queue/flush is a wrong method, not
// an unknown entry.
func flushPath(w http.ResponseWriter, r *http.Request) bool {
	if r.PathValue("id") != "flush" {
		return false
	}
	w.Header().Set("Allow", http.MethodPost)
	writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	return true
}

// entryError answers a queue control error: 404 for an unknown ID.
func entryError(w http.ResponseWriter, queueName, id string, err error) {
	if errors.Is(err, queue.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no entry %s in the %s queue", printable(id), queueName))
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}

func (s *Server) queueList(w http.ResponseWriter, r *http.Request) {
	name, sp, ok := s.spool(w, r)
	if !ok {
		return
	}
	infos, err := sp.List()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := EntryList{Queue: name, Entries: make([]Entry, 0, len(infos))}
	for _, in := range infos {
		out.Entries = append(out.Entries, entryOf(in, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) queueCorrupt(w http.ResponseWriter, r *http.Request) {
	name, sp, ok := s.spool(w, r)
	if !ok {
		return
	}
	list, err := sp.Corrupt()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := CorruptList{Queue: name, Dir: sp.CorruptDir(), Entries: make([]CorruptEntry, 0, len(list))}
	for _, e := range list {
		ce := CorruptEntry{ID: e.ID, Files: make([]CorruptFile, 0, len(e.Files))}
		for _, f := range e.Files {
			ce.Files = append(ce.Files, CorruptFile{Name: f.Name, Size: f.Size, SetAside: f.SetAside, Problem: f.Problem})
		}
		out.Entries = append(out.Entries, ce)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) queueShow(w http.ResponseWriter, r *http.Request) {
	if flushPath(w, r) {
		return
	}
	name, sp, ok := s.spool(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	in, err := sp.Get(id)
	if err != nil {
		entryError(w, name, id, err)
		return
	}
	writeJSON(w, http.StatusOK, entryOf(in, true))
}

func (s *Server) queueRetry(w http.ResponseWriter, r *http.Request) {
	s.entryAction(w, r, "retry", "retried", Spool.Retry)
}

func (s *Server) queueDelete(w http.ResponseWriter, r *http.Request) {
	if flushPath(w, r) {
		return
	}
	s.entryAction(w, r, "delete", "deleted", Spool.Delete)
}

// entryAction applies do to the entry named in the path, logs it as done and answers with an Action.
func (s *Server) entryAction(w http.ResponseWriter, r *http.Request, action, done string, do func(Spool, string) error) {
	name, sp, ok := s.spool(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if err := do(sp, id); err != nil {
		entryError(w, name, id, err)
		return
	}
	s.log.Info("ops: queue entry "+done, "queue", name, "id", id, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, Action{Queue: name, ID: id, Action: action})
}

func (s *Server) queueFlush(w http.ResponseWriter, r *http.Request) {
	name, sp, ok := s.spool(w, r)
	if !ok {
		return
	}
	sp.Flush()
	s.log.Info("ops: queue flushed", "queue", name, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, Action{Queue: name, Action: "flush"})
}

// entryOf turns a spool entry into what the listener shows; withRecipients adds the per-recipient
// state.
func entryOf(in queue.Info, withRecipients bool) Entry {
	e := Entry{
		ID: in.ID, Class: in.Class, Created: in.Created.UTC(), Expires: in.Expires.UTC(),
		NextAttempt: in.NextAttempt.UTC(), Size: in.Size, Domains: []string{},
	}
	if in.From != "" {
		e.SenderDomain = address.Domain(in.From)
	}
	known := []string{in.From}
	for _, r := range in.Recipients {
		known = append(known, r.Address)
	}
	for _, r := range in.Recipients {
		d := address.Domain(r.Address)
		if !slices.Contains(e.Domains, d) {
			e.Domains = append(e.Domains, d)
		}
		e.Attempts = max(e.Attempts, r.Attempts)
		switch r.Status {
		case "pending":
			e.Pending++
		case "delivered":
			e.Delivered++
		case "failed":
			e.Failed++
		}
		if withRecipients {
			e.Recipients = append(e.Recipients, Recipient{Domain: d, Status: r.Status, Attempts: r.Attempts,
				LastError: redactAddresses(r.LastError, known)})
		}
	}
	return e
}

// anyAddress matches what looks like an address in a reply text (dot-atom local part).
var anyAddress = regexp.MustCompile("[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@")

// redactAddresses reduces every address in s to "*@domain": the envelope's own addresses first
// (whatever their local part holds), then anything else that looks like one.
func redactAddresses(s string, known []string) string {
	if s == "" {
		return s
	}
	for _, a := range known {
		if local, _, ok := address.Split(a); ok && local != "" {
			s = replaceFold(s, local+"@", "*@")
		}
	}
	return anyAddress.ReplaceAllString(s, "*@")
}

// replaceFold replaces every case-insensitive occurrence of old (ASCII) in s with repl.
func replaceFold(s, old, repl string) string {
	lower, lo := strings.ToLower(s), strings.ToLower(old)
	if len(lower) != len(s) || !strings.Contains(lower, lo) {
		return strings.ReplaceAll(s, old, repl) // non-ASCII changed lengths: exact matches only
	}
	var b strings.Builder
	for {
		i := strings.Index(lower, lo)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i] + repl)
		s, lower = s[i+len(old):], lower[i+len(lo):]
	}
}

// printable keeps an ID from the request fit to be echoed in an answer.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
