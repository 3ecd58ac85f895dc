package queue

import "time"

// Jitter bounds: a delay is scaled by a factor in [jitterLow, jitterHigh).
const (
	jitterLow  = 0.8
	jitterHigh = 1.2
)

// backoff returns how long to wait before the next attempt for an entry that
// has been queued for age. As in Postfix, the base delay is the time already
// spent in the queue, clamped to [minB, maxB], so it roughly doubles with
// each attempt; it is then scaled by 0.8 + 0.4·u (u in [0, 1)) so that
// entries deferred together do not retry together. The result lies in
// [0.8·minB, 1.2·maxB).
func backoff(age, minB, maxB time.Duration, u float64) time.Duration {
	base := min(max(age, minB), maxB)
	u = min(max(u, 0), 1)
	return time.Duration(float64(base) * (jitterLow + (jitterHigh-jitterLow)*u))
}
