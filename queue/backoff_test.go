package queue

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const minB, maxB = 5 * time.Minute, 67 * time.Minute
	tests := []struct {
		name string
		age  time.Duration
		u    float64
		want time.Duration
	}{
		{"new entry waits the minimum", 0, 0.5, minB},
		{"young entry clamped up to min", 2 * time.Minute, 0.5, minB},
		{"grows with time in queue", 10 * time.Minute, 0.5, 10 * time.Minute},
		{"grows further", 40 * time.Minute, 0.5, 40 * time.Minute},
		{"clamped to max", 5 * time.Hour, 0.5, maxB},
		{"jitter low bound at min", 0, 0, 4 * time.Minute},
		{"jitter high bound at max", 24 * time.Hour, 1, time.Duration(1.2 * float64(maxB))},
		{"jitter low bound mid-range", 20 * time.Minute, 0, 16 * time.Minute},
		{"u below 0 treated as 0", 20 * time.Minute, -3, 16 * time.Minute},
		{"u above 1 treated as 1", 20 * time.Minute, 7, 24 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := backoff(tt.age, minB, maxB, tt.u); got != tt.want {
				t.Errorf("backoff(%v, u=%v) = %v, want %v", tt.age, tt.u, got, tt.want)
			}
		})
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	const minB, maxB = 5 * time.Minute, 67 * time.Minute
	for age := time.Duration(0); age < 3*time.Hour; age += 7 * time.Minute {
		base := min(max(age, minB), maxB)
		for i := 0; i <= 100; i++ {
			u := float64(i) / 100
			got := backoff(age, minB, maxB, u)
			if lo, hi := time.Duration(0.8*float64(base)), time.Duration(1.2*float64(base)); got < lo || got > hi {
				t.Fatalf("backoff(%v, u=%v) = %v, outside [%v, %v]", age, u, got, lo, hi)
			}
		}
		// Growth: an older entry never waits less for the same draw.
		if backoff(age+time.Minute, minB, maxB, 0.5) < backoff(age, minB, maxB, 0.5) {
			t.Fatalf("backoff shrinks with age at %v", age)
		}
	}
}
