package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-smtp"
)

// sendResult is what an SMTP client saw for one message.
type sendResult struct {
	Refused map[string]string // recipient -> reply, for recipients refused at RCPT
	Reply   string            // the final reply ("250 2.0.0 queued as …") or the error
	Err     error             // nil when the message was accepted for every non-refused recipient
}

// send submits msg over SMTP to addr, going on past recipients refused at RCPT as a real MTA does.
func send(c *smtp.Client, from string, to []string, msg []byte) sendResult {
	res := sendResult{Refused: map[string]string{}}
	if err := c.Mail(from, nil); err != nil {
		res.Err, res.Reply = err, err.Error()
		return res
	}
	accepted := 0
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			res.Refused[r] = err.Error()
			continue
		}
		accepted++
	}
	if accepted == 0 {
		res.Err = errors.New("every recipient was refused")
		res.Reply = res.Err.Error()
		_ = c.Reset()
		return res
	}
	w, err := c.Data()
	if err != nil {
		res.Err, res.Reply = err, err.Error()
		return res
	}
	if _, err := w.Write(msg); err != nil {
		res.Err, res.Reply = err, err.Error()
		return res
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		res.Err, res.Reply = err, err.Error()
		return res
	}
	res.Reply = "250 " + resp.StatusText
	return res
}

// dialSMTP connects and greets.
func dialSMTP(addr string) (*smtp.Client, error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return nil, err
	}
	if err := c.Hello("sealpost-client.localhost"); err != nil {
		c.Close()
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	return c, nil
}

// refusalText shortens an SMTP error for one line of output.
func refusalText(s string) string { return strings.TrimSpace(strings.SplitN(s, "\n", 2)[0]) }
