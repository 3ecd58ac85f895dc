package inbound

// Observer is told the outcome of each inbound message, for metrics: the verdict's status
// and method, the action taken (deliver, quarantine, or "refused" for a 5xx), never addresses.
type Observer interface {
	Inbound(status, method, action string)
}
