package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/voiced-dev/voiced/agents/durable"
)

// ReturnsWorkflowName is the name of the example workflow that Returns
// builds.
const ReturnsWorkflowName = "returns"

// ReturnRequest is the input of the returns workflow.
type ReturnRequest struct {
	OrderID     string `json:"order_id"`
	Reason      string `json:"reason,omitempty"`
	AmountCents int64  `json:"amount_cents"`
}

// Approval is the payload of the "approval" signal, and the output of the
// approve step.
type Approval struct {
	Approved bool   `json:"approved"`
	By       string `json:"by"` // who decided; "auto" when the timer ran out
}

// ReturnOutcome is the returns workflow's result.
type ReturnOutcome struct {
	OrderID  string `json:"order_id"`
	Approved bool   `json:"approved"`
	RefundID string `json:"refund_id,omitempty"`
	Message  string `json:"message"`
}

// ErrInvalidReturn is the permanent error of a return request that fails
// validation.
var ErrInvalidReturn = errors.New("demo: invalid return request")

// ReturnsConfig configures the returns workflow. The zero value works.
type ReturnsConfig struct {
	// AutoApprove is how long the approve step waits for an "approval"
	// signal before approving by itself (a durable timer). 0: one minute.
	AutoApprove time.Duration
	// Refund pays a refund and returns its ID. key is the step's
	// idempotency key: a payment system given it twice must refund once.
	// Nil: a stand-in that derives the ID from key.
	Refund func(ctx context.Context, key string, req ReturnRequest) (string, error)
}

// Returns builds the example workflow "returns": validate the request →
// approve (wait for the "approval" signal, or approve automatically after
// AutoApprove) → refund → notify the customer through durable.RunContext.Notify.
func Returns(cfg ReturnsConfig) durable.Workflow {
	if cfg.AutoApprove <= 0 {
		cfg.AutoApprove = time.Minute
	}
	if cfg.Refund == nil {
		cfg.Refund = func(_ context.Context, key string, _ ReturnRequest) (string, error) {
			h := fnv.New64a()
			h.Write([]byte(key))
			return fmt.Sprintf("rf_%016x", h.Sum64()), nil
		}
	}
	return durable.Workflow{
		Name:        ReturnsWorkflowName,
		InputSchema: json.RawMessage(`{"type":"object","properties":{"order_id":{"type":"string","description":"the order to return"},"reason":{"type":"string"},"amount_cents":{"type":"integer","minimum":1,"description":"amount to refund, in cents"}},"required":["order_id","amount_cents"],"additionalProperties":false}`),
		Steps: []durable.Step{
			{Name: "validate", Run: durable.Func(func(_ context.Context, r *durable.RunContext) (ReturnRequest, error) {
				var req ReturnRequest
				if err := r.DecodeInput(&req); err != nil {
					return req, durable.Permanent(fmt.Errorf("%w: %w", ErrInvalidReturn, err))
				}
				if req.OrderID == "" || req.AmountCents <= 0 {
					return req, durable.Permanent(fmt.Errorf("%w: need an order_id and a positive amount_cents", ErrInvalidReturn))
				}
				return req, nil
			})},
			// A Wait step, so that it runs on either engine (the Temporal
			// one waits only in such steps).
			{Name: "approve", Wait: &durable.Wait{Signal: "approval", Timeout: cfg.AutoApprove,
				Default: json.RawMessage(`{"approved":true,"by":"auto"}`)}},
			{Name: "refund", Retry: durable.RetryPolicy{MaxAttempts: 5, Backoff: time.Second, MaxBackoff: 30 * time.Second},
				Run: durable.Func(func(ctx context.Context, r *durable.RunContext) (string, error) {
					var req ReturnRequest
					var a Approval
					if err := r.DecodeOutput("validate", &req); err != nil {
						return "", err
					}
					if err := r.DecodeOutput("approve", &a); err != nil {
						return "", durable.Permanent(fmt.Errorf("demo: approval payload: %w", err))
					}
					if !a.Approved {
						return "", nil
					}
					return cfg.Refund(ctx, r.IdempotencyKey(), req)
				})},
			{Name: "notify", Run: durable.Func(func(_ context.Context, r *durable.RunContext) (ReturnOutcome, error) {
				var req ReturnRequest
				var a Approval
				var refund string
				if err := r.DecodeOutput("validate", &req); err != nil {
					return ReturnOutcome{}, err
				}
				if err := r.DecodeOutput("approve", &a); err != nil {
					return ReturnOutcome{}, err
				}
				if err := r.DecodeOutput("refund", &refund); err != nil {
					return ReturnOutcome{}, err
				}
				out := ReturnOutcome{OrderID: req.OrderID, Approved: a.Approved, RefundID: refund}
				if a.Approved {
					out.Message = fmt.Sprintf("Your return for order %s is approved; your refund is on its way.", req.OrderID)
				} else {
					out.Message = fmt.Sprintf("Sorry, your return for order %s was not approved.", req.OrderID)
				}
				r.Notify(out.Message)
				return out, nil
			})},
		},
	}
}
