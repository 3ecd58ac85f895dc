package outbound

import (
	"time"

	"github.com/sealpost/sealpost/gateway"
)

// Observer is told what the outbound pipeline decided, for metrics. Its methods are called from
// SMTP sessions, so they must be safe for concurrent use and return quickly. They never see
// addresses or message content: classes, methods and reasons only.
type Observer interface {
	// Accepted: one protected copy was queued (reported once every copy of the message is
	// queued); method is "smime", "pgp" or "signed", recipients how many it goes to.
	Accepted(class, method string, recipients int)
	// Refused: MAIL, RCPT or DATA was refused; reason is ReasonCode(err). class is "" when the
	// transaction had not started (MAIL refused).
	Refused(class, reason string)
	// Protected: one copy was signed, timestamped and (except "signed") encrypted in d.
	Protected(method string, d time.Duration)
	// KeyChosen: a recipient of class was accepted with a key of source (registered, learned,
	// discovered).
	KeyChosen(class, source string)
	// RevocationUnchecked: a recipient certificate was used whose revocation status could not be
	// checked (the class is soft-fail).
	RevocationUnchecked(class string)
}

// nopObserver is the Observer of a pipeline built without one.
type nopObserver struct{}

func (nopObserver) Accepted(string, string, int)    {}
func (nopObserver) Refused(string, string)          {}
func (nopObserver) Protected(string, time.Duration) {}
func (nopObserver) KeyChosen(string, string)        {}
func (nopObserver) RevocationUnchecked(string)      {}

// refused reports err, when it is one, as a refusal of class, and returns it.
func (g *Pipeline) refused(class string, err error) error {
	if err != nil {
		g.obs.Refused(class, gateway.ReasonCode(err))
	}
	return err
}
