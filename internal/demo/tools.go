// Package demo holds what the example configurations and the web demo use
// and a real deployment replaces: the example tools (Tools) and the
// example durable workflow (Returns). It is not part of the library.
package demo

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/voiced-dev/voiced/agents"
)

// Tools returns the tools the example configurations use. get_time is
// real (the system's time zone database); lookup_invoice and get_weather
// answer from a small built-in example data set, since the demo runs
// offline. Real deployments register their own tools.
func Tools(now func() time.Time) map[string]agents.Tool {
	if now == nil {
		now = time.Now
	}
	tools := map[string]agents.Tool{}
	add := func(t agents.Tool) { tools[t.Spec().Name] = t }

	type invoiceArgs struct {
		InvoiceID string `json:"invoice_id" jsonschema:"description=The invoice number, for example 1001"`
	}
	add(agents.MustTool("lookup_invoice", "Look up an invoice by its number: amount, status and charges.",
		func(_ context.Context, a invoiceArgs) (string, error) {
			id := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(a.InvoiceID)), "INV-")
			inv, ok := demoInvoices[id]
			if !ok {
				return "", fmt.Errorf("no invoice %q", a.InvoiceID)
			}
			return inv, nil
		}, agents.WithToolTimeout(2*time.Second)))

	type cityArgs struct {
		City string `json:"city" jsonschema:"description=A city name, for example Paris"`
	}
	add(agents.MustTool("get_time", "Tell the local time in a city.",
		func(_ context.Context, a cityArgs) (string, error) {
			zone, ok := zones[strings.ToLower(strings.TrimSpace(a.City))]
			if !ok {
				return "", fmt.Errorf("unknown city %q", a.City)
			}
			loc, err := time.LoadLocation(zone)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("It is %s in %s.", now().In(loc).Format("3:04 PM"), a.City), nil
		}))
	add(agents.MustTool("get_weather", "Tell the weather in a city (example data).",
		func(_ context.Context, a cityArgs) (string, error) {
			w, ok := demoWeather[strings.ToLower(strings.TrimSpace(a.City))]
			if !ok {
				return "", fmt.Errorf("no weather for %q", a.City)
			}
			return fmt.Sprintf("In %s it is %s.", a.City, w), nil
		}))
	type ticketArgs struct {
		Summary string `json:"summary" jsonschema:"description=What the ticket is about"`
	}
	var tickets atomic.Int64
	add(agents.MustTool("open_ticket", "Open a support ticket (example: numbered in memory).",
		func(_ context.Context, a ticketArgs) (string, error) {
			return fmt.Sprintf("Ticket %d opened: %s.", 1000+tickets.Add(1), strings.TrimSpace(a.Summary)), nil
		}))
	return tools
}

var demoInvoices = map[string]string{
	"1001": "Invoice 1001: 49 dollars for the Pro plan, charged twice on March 3rd; the duplicate charge is refundable.",
	"1002": "Invoice 1002: 19 dollars for the Basic plan, paid once on March 5th.",
	"1003": "Invoice 1003: 99 dollars for the Team plan, payment pending.",
}

var demoWeather = map[string]string{
	"paris": "sunny and 21 degrees", "tokyo": "cloudy and 17 degrees",
	"london": "rainy and 12 degrees", "new york": "clear and 18 degrees",
}

var zones = map[string]string{
	"paris": "Europe/Paris", "tokyo": "Asia/Tokyo", "london": "Europe/London",
	"new york": "America/New_York", "berlin": "Europe/Berlin", "sydney": "Australia/Sydney",
}
