package carrier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/voiced-dev/voiced/transport"
)

// Call control for agents on carrier calls (internal/calltools): end the
// call once the agent has finished speaking, transfer the caller, press
// keys. Each goes through the vendor's REST call-control API where it has
// one; where it has none the tool is told so (ErrNotAvailable).

var (
	// ErrEndedByAgent ends a session whose agent hung up (end_call), an
	// ordinary end (it wraps transport.ErrEnded). It does not wrap
	// transport.ErrClientGone: the call is then hung up through the
	// vendor's API.
	ErrEndedByAgent = fmt.Errorf("carrier: call ended by the agent: %w", transport.ErrEnded)
	// ErrTransferred ends a session whose caller was transferred: the
	// carrier carries the call on, so it is not hung up.
	ErrTransferred = fmt.Errorf("carrier: caller transferred: %w", transport.ErrEnded)
	// ErrNotAvailable is the answer of a control the vendor's API lacks.
	ErrNotAvailable = errors.New("not available on this carrier")
	// ErrTransfer wraps a transfer that failed; the call goes on.
	ErrTransfer = errors.New("carrier: transfer failed")
	// ErrDTMF wraps keys that could not be sent.
	ErrDTMF = errors.New("carrier: sending keys failed")
)

// defaultSettle is how long the bot must stay quiet before end_call hangs
// up and before a transfer leaves (Config.Settle): the agent's last
// sentence may still be on its way to the playout (as on the SIP edge).
const defaultSettle = 1200 * time.Millisecond

// Control is the call-control handle of one live carrier call. Its methods
// are safe for concurrent use.
type Control struct{ c *conn }

// Control returns the call a session runs on, by transport.Session.ID.
func (h *Handler) Control(sessionID string) (*Control, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.live[sessionID]
	if !ok {
		return nil, false
	}
	return &Control{c: c}, true
}

// Vendor returns the call's vendor name ("twilio").
func (k *Control) Vendor() string { return k.c.h.v.Name }

// EndCall hangs up once the agent has finished speaking: everything it
// queued has played and nothing new came for a moment (at most 30 s). It
// returns at once; the session then ends with ErrEndedByAgent and the edge
// hangs up as for any end on voiced's side — after the carrier has
// answered the last mark, through Vendor.Hangup.
func (k *Control) EndCall() {
	c := k.c
	c.endOnce.Do(func() {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if !c.quiet(ctx) {
				return // ended meanwhile
			}
			c.Logger().Info("agent ends the call")
			c.Close(ErrEndedByAgent)
		}()
	})
}

// quiet waits until the playout has played everything and no audio came
// for Config.Settle. It reports false when the call ended first; a ctx that ends
// stops the wait (true: go on regardless).
func (c *conn) quiet(ctx context.Context) bool {
	for ctx.Err() == nil {
		if c.play != nil {
			if err := c.play.Drain(ctx, nil); err != nil {
				break
			}
		}
		n := c.written.Load()
		t := time.NewTimer(c.h.cfg.Settle)
		select {
		case <-t.C:
		case <-c.Done():
			t.Stop()
			return false
		case <-ctx.Done():
			t.Stop()
		}
		if c.written.Load() == n {
			break
		}
	}
	select {
	case <-c.Done():
		return false
	default:
		return true
	}
}

// phoneNumber is an E.164 number: a plus and 6 to 15 digits.
var phoneNumber = regexp.MustCompile(`^\+[1-9][0-9]{5,14}$`)

// ValidTarget reports whether target is a transfer target a carrier can
// dial: an E.164 number (+15550123) or a sip: URI.
func ValidTarget(target string) bool {
	if phoneNumber.MatchString(target) {
		return true
	}
	return strings.HasPrefix(target, "sip:") && len(target) > 4 && !strings.ContainsAny(target, "<>\"'& \r\n\t")
}

// Transfer hands the caller to target (an E.164 number or a sip: URI)
// through the vendor's API, once the agent has finished speaking (at most
// 10 s). When the vendor accepts, the session ends with ErrTransferred and
// the call is left to the carrier; when it refuses, the error says why and
// the call goes on.
func (k *Control) Transfer(ctx context.Context, target string) error {
	c := k.c
	v := c.h.v
	if v.Transfer == nil {
		return fmt.Errorf("transfer is %w (%s): %s", ErrNotAvailable, v.Name, v.NoTransfer)
	}
	if !ValidTarget(target) {
		return fmt.Errorf("%w: bad target %q: want +E.164 or a sip: URI", ErrTransfer, target)
	}
	if !c.transferring.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: a transfer is already under way", ErrTransfer)
	}
	defer c.transferring.Store(false)
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	ok := c.quiet(wait)
	cancel()
	if !ok {
		return c.Err()
	}
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	// Marked before the request: a session that ends meanwhile must not
	// hang up a call the carrier may be moving.
	c.mu.Lock()
	c.transferred = true
	c.mu.Unlock()
	if err := v.Transfer(rctx, c.h.cfg.HTTPClient, c.h.cfg.API, c.call, target); err != nil {
		c.mu.Lock()
		c.transferred = false
		c.mu.Unlock()
		return err
	}
	c.Logger().Info("transferred", "target", target)
	c.Close(ErrTransferred)
	return nil
}

// SendDTMF has the carrier play keys (0-9, *, #, A-D) to the far end
// through its API, and returns once the carrier accepted them.
func (k *Control) SendDTMF(ctx context.Context, keys string) error {
	c := k.c
	v := c.h.v
	if v.SendDTMF == nil {
		return fmt.Errorf("sending keys is %w (%s): %s", ErrNotAvailable, v.Name, v.NoDTMF)
	}
	if keys == "" || strings.Trim(keys, "0123456789*#ABCD") != "" {
		return fmt.Errorf("%w: keys %q: want 0-9 * # A-D", ErrDTMF, keys)
	}
	select {
	case <-c.Done():
		return c.Err()
	default:
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return v.SendDTMF(rctx, c.h.cfg.HTTPClient, c.h.cfg.API, c.call, keys)
}

// register and unregister keep the handler's live calls by session ID.
func (h *Handler) register(c *conn) {
	h.mu.Lock()
	h.live[c.ID()] = c
	h.mu.Unlock()
}

func (h *Handler) unregister(c *conn) {
	h.mu.Lock()
	delete(h.live, c.ID())
	h.mu.Unlock()
}

// restRequest builds a REST request with a body of the given type.
func restRequest(ctx context.Context, method, u, contentType, body string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req, nil
}
