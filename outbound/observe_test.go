package outbound

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/gateway"
	"github.com/sealpost/sealpost/internal/pipelinetest"
	"github.com/sealpost/sealpost/queue"
	"github.com/sealpost/sealpost/smime"
	"github.com/sealpost/sealpost/tsa"
)

// observed records what the gateway reports to its Observer, one line per call.
type observed struct {
	mu        sync.Mutex
	calls     []string
	protected map[string]time.Duration
}

func (o *observed) Accepted(class, method string, recipients int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, fmt.Sprintf("accepted %s %s %d", class, method, recipients))
}

func (o *observed) Refused(class, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, fmt.Sprintf("refused %s %s", class, reason))
}

func (o *observed) KeyChosen(class, source string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, fmt.Sprintf("key %s %s", class, source))
}

func (o *observed) RevocationUnchecked(class string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, "unchecked "+class)
}

func (o *observed) Protected(method string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, "protected "+method)
	if o.protected == nil {
		o.protected = map[string]time.Duration{}
	}
	o.protected[method] += d
}

func newObservedPipeline(t *testing.T, sp queue.Writer, sm *smime.Protector, obs Observer) *Pipeline {
	t.Helper()
	f := pipelinetest.Get(t)
	if sm == nil {
		sm = f.SMIME
	}
	g, err := New(testConfig(), f.Direct, sm, sp, WithPGP(f.PGP), WithObserver(obs), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestObserverSeesEachDecision(t *testing.T) {
	noKey, relay, queueDown, tsaDown := gateway.ReasonCode(gateway.ErrNoKey), gateway.ReasonCode(gateway.ErrRelayDenied), gateway.ReasonCode(gateway.ErrQueueUnavailable), gateway.ReasonCode(gateway.ErrTimestampFailed)
	deadTSA := func(t *testing.T) *smime.Protector {
		f := pipelinetest.Get(t)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + l.Addr().String()
		l.Close()
		client, err := tsa.NewClient([]string{dead}, f.Roots, tsa.WithTimeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		signer, _ := f.Dir.Identity("signer")
		sm, err := smime.NewProtector(signer, smime.WithTimestamper(client))
		if err != nil {
			t.Fatal(err)
		}
		return sm
	}
	tests := []struct {
		name   string
		client gateway.Client
		from   string
		to     []string
		msg    string
		spool  *pipelinetest.MemSpool
		smime  func(*testing.T) *smime.Protector
		want   []string
	}{
		{name: "AcceptedPerCopy", client: pipelinetest.Trusted, from: "statements@bank.example", to: []string{"alice@example.com", "carol@example.org"}, msg: statementMsg,
			want: []string{"key statement registered", "key statement registered", "protected smime", "protected pgp", "accepted statement smime 1", "accepted statement pgp 1"}},
		{name: "SignedCopy", client: pipelinetest.Trusted, from: "support@bank.example", to: []string{"bob@example.net"},
			msg:  "From: support@bank.example\r\nTo: bob@example.net\r\nSubject: Re: your question\r\n\r\nHello Bob\r\n",
			want: []string{"protected signed", "accepted support signed 1"}},
		{name: "KeylessRecipientRefusedAtRcpt", client: pipelinetest.Trusted, from: "statements@bank.example", to: []string{"alice@example.com", "bob@example.net"}, msg: statementMsg,
			want: []string{"key statement registered", "refused statement " + noKey}},
		{name: "RelayDeniedAtMail", client: gateway.Client{}, from: "statements@bank.example", to: []string{"alice@example.com"}, msg: statementMsg,
			want: []string{"refused  " + relay}},
		{name: "ClassChangeAtData", client: gateway.Client{Trusted: true, Authenticated: true}, from: "support@bank.example", to: []string{"bob@example.net"},
			msg:  "From: support@bank.example\r\nTo: bob@example.net\r\nSealpost-Class: otp\r\n\r\ncode 1\r\n",
			want: []string{"refused otp " + noKey}},
		{name: "SpoolFailureCountsNoCopy", client: pipelinetest.Trusted, from: "statements@bank.example", to: []string{"alice@example.com", "carol@example.org"}, msg: statementMsg,
			spool: &pipelinetest.MemSpool{FailAt: 2},
			want:  []string{"key statement registered", "key statement registered", "protected smime", "protected pgp", "refused statement " + queueDown}},
		{name: "TimestampAuthorityDown", client: pipelinetest.Trusted, from: "statements@bank.example", to: []string{"alice@example.com"}, msg: statementMsg,
			smime: deadTSA, want: []string{"key statement registered", "refused statement " + tsaDown}},
		{name: "UnparseableHeader", client: pipelinetest.Trusted, from: "otp@bank.example", to: []string{"alice@example.com"}, msg: "no colon here\r\n\r\nbody\r\n",
			want: []string{"key otp registered", "refused otp refused"}},
		{name: "NoFrom", client: pipelinetest.Trusted, from: "statements@bank.example", to: []string{"alice@example.com"}, msg: "Subject: x\r\n\r\nx\r\n",
			want: []string{"key statement registered", "refused statement refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := &observed{}
			sp := tt.spool
			if sp == nil {
				sp = &pipelinetest.MemSpool{}
			}
			var sm *smime.Protector
			if tt.smime != nil {
				sm = tt.smime(t)
			}
			g := newObservedPipeline(t, sp, sm, obs)
			_, err := pipelinetest.Transaction(t, g, tt.client, tt.from, tt.to, tt.msg)
			if last := tt.want[len(tt.want)-1]; (err != nil) != (last[:7] == "refused") {
				t.Fatalf("transaction: %v", err)
			}
			if !slices.Equal(obs.calls, tt.want) {
				t.Fatalf("observer got %q, want %q", obs.calls, tt.want)
			}
			for m, d := range obs.protected {
				if d <= 0 {
					t.Errorf("protect latency of %s is %v", m, d)
				}
			}
		})
	}
}

// A gateway without an Observer works as before.
func TestNilObserver(t *testing.T) {
	g := newObservedPipeline(t, &pipelinetest.MemSpool{}, nil, nil)
	if _, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "statements@bank.example", []string{"bob@example.net"}, statementMsg); err == nil {
		t.Fatal("keyless recipient accepted")
	}
	if _, err := pipelinetest.Transaction(t, g, pipelinetest.Trusted, "statements@bank.example", []string{"alice@example.com"}, statementMsg); err != nil {
		t.Fatal(err)
	}
}
