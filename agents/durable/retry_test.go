package durable

import (
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		p       RetryPolicy
		attempt int
		want    time.Duration
	}{
		{RetryPolicy{}, 1, time.Second},
		{RetryPolicy{}, 3, 4 * time.Second},
		{RetryPolicy{}, 40, time.Minute},
		{RetryPolicy{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}, 1, 100 * time.Millisecond},
		{RetryPolicy{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}, 4, 800 * time.Millisecond},
		{RetryPolicy{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}, 5, time.Second},
		{RetryPolicy{Backoff: time.Hour, MaxBackoff: time.Minute}, 1, time.Minute},
	}
	for _, tc := range tests {
		if got := tc.p.delay(tc.attempt); got != tc.want {
			t.Errorf("%+v.delay(%d) = %v, want %v", tc.p, tc.attempt, got, tc.want)
		}
	}
	if got := (RetryPolicy{}).attempts(); got != 1 {
		t.Errorf("zero policy allows %d attempts, want 1", got)
	}
}
