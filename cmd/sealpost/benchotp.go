package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sealpost/sealpost/api"
	"github.com/sealpost/sealpost/keys"
)

// The OTP runs' offered rates: the issue's figures are for 200 codes/s with no load and for codes
// at a login flow's pace while a statement run saturates the relay.
const (
	otpIdleRate = 200
	otpLoadRate = 20
)

// otpAddress is the i-th bench OTP customer: one address per code, so that the sink knows each
// code's mail by its recipient and no address meets the rate limit.
func otpAddress(i int) string { return fmt.Sprintf("otp-%d@example.com", i) }

// benchOTPCustomers registers otp-0…otp-(n-1)@example.com in dir, all on one certificate with
// alice's key issued by the development CA: one RSA signature instead of n key pairs.
func benchOTPCustomers(dir keys.DataDir, alice *keys.Identity, n int) error {
	ca, err := dir.Identity("ca")
	if err != nil {
		return err
	}
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = otpAddress(i)
	}
	now := time.Now()
	cert, err := ca.Issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "sealpost bench OTP customers"},
		EmailAddresses:        addrs,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		BasicConstraintsValid: true,
	}, alice.Certificate().PublicKey)
	if err != nil {
		return err
	}
	_, err = dir.Import(keys.EncodeCertificates(cert), keys.ImportOptions{})
	return err
}

// otpFigures are one OTP run's latencies from the API call's start to the sink's acceptance, and
// to the API's answer (the part of it spent before the queue); delivered is how many codes' mail
// the sink accepted.
type otpFigures struct {
	codes, delivered   int
	p50, p99           time.Duration
	answer50, answer99 time.Duration
}

// otpBench is the -otp runs: a gateway with the API on, a token of scope otp, and its client.
type otpBench struct {
	url, secret string
	client      *http.Client
	sink        *sink
	next        int // the next OTP customer's number
}

// otpSlowHop is how long the sink takes over each statement in the backlog run: with the bench's
// 16 default-lane workers, 320 statements/s, slower than the gateway accepts them, so that
// thousands wait in the queue while the codes are measured.
const otpSlowHop = 50 * time.Millisecond

// otp measures OTP latency in one run of its own gateway: first with no load, codes offered at
// otpIdleRate/s for seconds; then while load statements saturate the relay, codes at
// otpLoadRate/s for seconds; then again while the next hop takes otpSlowHop over each statement,
// so that a statement backlog waits in the queue ahead of the codes. Each loaded run prints how
// many statements were queued when the codes started and when the last code arrived.
func (b *bench) otp(load, seconds int) error {
	idle, loaded := otpIdleRate*seconds, otpLoadRate*seconds
	cluster, done, err := benchNodes(b.sink, benchOptions{otpCustomers: idle + 2*loaded}, 1, b.stderr)
	if err != nil {
		return err
	}
	defer done()
	inst := cluster[0].inst
	secret, _, err := api.CreateToken(context.Background(), inst.data.store, "bench", []string{api.ScopeOTP}, time.Now(), time.Time{})
	if err != nil {
		return err
	}
	o := &otpBench{url: "http://" + inst.api.Addr().String() + "/v1/otp", secret: secret, sink: b.sink,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: time.Minute}}
	defer o.client.CloseIdleConnections()
	base := b.sink.total()
	f, err := o.run(idle, otpIdleRate)
	if err != nil {
		return err
	}
	b.w("OTP latency, no load, at %d codes/s offered (%d codes, %d delivered): p50 %v, p99 %v (target p99 ≤ 20ms); API answered p50 %v, p99 %v",
		otpIdleRate, f.codes, f.delivered, f.p50, f.p99, f.answer50, f.answer99)
	if err := f.lost(); err != nil {
		return err
	}
	addr := inst.Addr().String()
	base += idle
	if err := b.otpUnderLoad(o, addr, base, load, loaded, 0); err != nil {
		return err
	}
	base += loaded + load
	return b.otpUnderLoad(o, addr, base, load, loaded, otpSlowHop)
}

// otpUnderLoad offers codes at otpLoadRate/s while load statements go to the gateway at addr
// (the sink had base messages before), once the first tenth (at most 1000) were accepted — or,
// when the sink takes slow over each statement, once that many wait in the queue.
func (b *bench) otpUnderLoad(o *otpBench, addr string, base, load, loaded int, slow time.Duration) error {
	b.sink.slow.Store(int64(slow))
	defer b.sink.slow.Store(0)
	fl := flood(addr, b.conc, load, b.mix.size)
	queued := func() int { return int(fl.accepted.Load()) - (b.sink.total() - base) }
	// The codes start once the statement run is under way: the gateway signs and encrypts as it
	// accepts, so the statements load the relay from the first.
	head := min(load/10, 1000)
	if err := waitFlood(fl, func() bool {
		if slow > 0 {
			return queued() >= head
		}
		return fl.accepted.Load() >= int64(head)
	}); err != nil {
		return err
	}
	atStart := queued()
	f, err := o.run(loaded, otpLoadRate)
	if err != nil {
		return err
	}
	delivered := b.sink.total() - base - f.delivered
	accepted := int(fl.accepted.Load())
	what := "while %d statements were sent"
	if slow > 0 {
		what = "while %d statements were sent to a next hop that takes " + slow.String() + " over each"
	}
	b.w("OTP latency, under load, at %d codes/s offered (%d codes, %d delivered) "+what+": p50 %v, p99 %v (target p99 ≤ 1s, aim ≤ 250ms); API answered p50 %v, p99 %v; statements queued ahead of the codes: %d when they started, %d when they finished (%d not yet sent)",
		otpLoadRate, f.codes, f.delivered, load, f.p50, f.p99, f.answer50, f.answer99, atStart, accepted-delivered, load-accepted)
	if err := f.lost(); err != nil {
		return err
	}
	if err := <-fl.done; err != nil {
		return err
	}
	last, err := b.sink.waitTotal(base+loaded+load, 10*time.Minute)
	if err != nil {
		return err
	}
	b.w("OTP load: %d statements delivered at %.0f/s", load, float64(load)/last.Sub(fl.start).Seconds())
	return nil
}

// run offers codes codes at rate/s, each to a customer of its own, and waits for each at the sink.
func (o *otpBench) run(codes, rate int) (otpFigures, error) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	first := o.next
	o.next += codes
	sent := make([]time.Time, codes)
	answer := make([]time.Duration, codes)
	errs := make([]error, codes)
	var wg sync.WaitGroup
	for i := range codes {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent[i], errs[i] = o.issue(otpAddress(first + i))
			answer[i] = time.Since(sent[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return otpFigures{}, err
	}
	// A code whose mail is not at the sink a minute after the last call is counted as lost.
	deadline := time.Now().Add(time.Minute)
	lat := make([]time.Duration, 0, codes)
	for i := range codes {
		at, err := o.sink.wait(otpAddress(first+i), max(time.Until(deadline), 0))
		if err == nil {
			lat = append(lat, at.Sub(sent[i]))
		}
	}
	f := otpFigures{codes: codes, delivered: len(lat)}
	if len(lat) > 0 {
		f.p50, f.p99 = percentiles(lat)
	}
	f.answer50, f.answer99 = percentiles(answer)
	return f, nil
}

// lost is an error when some of f's codes never reached the sink.
func (f otpFigures) lost() error {
	if f.delivered < f.codes {
		return fmt.Errorf("%d of %d codes never reached the sink", f.codes-f.delivered, f.codes)
	}
	return nil
}

// percentiles sorts d and returns its p50 and p99, to 0.1 ms.
func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2].Round(100 * time.Microsecond), d[len(d)*99/100].Round(100 * time.Microsecond)
}

// issue asks the API for a login code for addr and returns when the call started.
func (o *otpBench) issue(addr string) (time.Time, error) {
	body, _ := json.Marshal(map[string]string{"address": addr, "purpose": "login"})
	req, err := http.NewRequest(http.MethodPost, o.url, bytes.NewReader(body))
	if err != nil {
		return time.Time{}, err
	}
	req.Header.Set("Authorization", "Bearer "+o.secret)
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := o.client.Do(req)
	if err != nil {
		return t0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return t0, fmt.Errorf("POST /v1/otp for %s: %d %s", addr, resp.StatusCode, b)
	}
	return t0, nil
}

// flooding is a statement run in progress: when it started, how many statements the gateway has
// accepted, and its end (nil, or the first error).
type flooding struct {
	start    time.Time
	accepted atomic.Int64
	done     chan error
}

// flood submits m statements of size bytes to alice over conc reused connections to addr, as
// fast as the gateway takes them.
func flood(addr string, conc, m, size int) *flooding {
	fl := &flooding{start: time.Now(), done: make(chan error, 1)}
	jobs := make(chan int, conc)
	go func() {
		defer close(jobs)
		for i := range m {
			jobs <- i
		}
	}()
	errs := make([]error, conc)
	var wg sync.WaitGroup
	for j := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialSMTP(addr)
			if err != nil {
				errs[j] = err
				for range jobs {
				}
				return
			}
			defer c.Close()
			for i := range jobs {
				msg := benchMessage(benchStatements, "Your statement", fmt.Sprintf("<bench-otpload-%d@bank.example>", i), size)
				if _, err := submitTimed(c, benchStatements, msg); err != nil {
					errs[j] = fmt.Errorf("statement %d: %w", i, err)
					for range jobs {
					}
					return
				}
				fl.accepted.Add(1)
			}
		}()
	}
	go func() {
		wg.Wait()
		fl.done <- errors.Join(errs...)
	}()
	return fl
}

// waitFlood waits until ready is true, or fl ended.
func waitFlood(fl *flooding, ready func() bool) error {
	for !ready() {
		select {
		case err := <-fl.done:
			fl.done <- err
			return err
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
