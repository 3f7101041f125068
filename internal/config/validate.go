package config

import (
	"fmt"
	"net"
	"regexp"
	"time"
)

// agentName is what an agent's name may be.
var agentName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

func validateLLM(where string, m LLM) []error {
	var errs []error
	if m.Provider == "openai" && m.OpenAI.Model == "" {
		errs = append(errs, fmt.Errorf("%s.openai.model: required for provider openai", where))
	}
	if m.OpenAI.APIKey != "" {
		errs = append(errs, fmt.Errorf("%s.openai.api_key: keys do not belong in files; name the variable that holds it with api_key_env", where))
	}
	if m.Resilience.Retries < 0 || m.Resilience.BreakerFailures < 0 {
		errs = append(errs, fmt.Errorf("%s.resilience: negative counts", where))
	}
	return errs
}

// ModelNames returns "default" and the [[models]] names.
func (c Config) ModelNames() []string {
	names := []string{"default"}
	for _, m := range c.Models {
		names = append(names, m.Name)
	}
	return names
}

func (c Config) validateModels() []error {
	errs := validateLLM("llm", c.LLM)
	names := map[string]bool{"default": true}
	for i, m := range c.Models {
		where := fmt.Sprintf("models[%d]", i)
		if m.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: required", where))
		} else if names[m.Name] {
			errs = append(errs, fmt.Errorf("%s.name %q: duplicate", where, m.Name))
		}
		names[m.Name] = true
		if m.Provider == "" {
			m.Provider = "scripted"
		}
		errs = append(errs, validateLLM(where, m.LLM)...)
	}
	check := func(where string, refs []string) {
		for _, r := range refs {
			if !names[r] {
				errs = append(errs, fmt.Errorf("%s: unknown model %q", where, r))
			}
		}
	}
	check("llm.resilience.failover", c.LLM.Resilience.Failover)
	for i, m := range c.Models {
		check(fmt.Sprintf("models[%d].resilience.failover", i), m.Resilience.Failover)
	}
	for i, a := range c.Agents {
		if a.Model != "" {
			check(fmt.Sprintf("agents[%d].model", i), []string{a.Model})
		}
	}
	if c.Orchestration.Model != "" {
		check("orchestration.model", []string{c.Orchestration.Model})
	}
	return errs
}

func (c Config) validateAgents() []error {
	var errs []error
	names := map[string]bool{}
	for i, a := range c.Agents {
		where := fmt.Sprintf("agents[%d]", i)
		switch {
		case a.Name == "":
			errs = append(errs, fmt.Errorf("%s.name: required", where))
		case !agentName.MatchString(a.Name):
			errs = append(errs, fmt.Errorf("%s.name %q: use letters, digits, - and _", where, a.Name))
		case names[a.Name]:
			errs = append(errs, fmt.Errorf("%s.name %q: duplicate", where, a.Name))
		}
		names[a.Name] = true
		for j, r := range a.Rules {
			if _, err := regexp.Compile(r.Match); err != nil {
				errs = append(errs, fmt.Errorf("%s.rules[%d].match: %v", where, j, err))
			}
		}
	}
	known := func(where, n string) {
		if !names[n] {
			errs = append(errs, fmt.Errorf("%s: unknown agent %q", where, n))
		}
	}
	for i, a := range c.Agents {
		for _, h := range a.Handoffs {
			known(fmt.Sprintf("agents[%d].handoffs", i), h)
		}
	}
	o := c.Orchestration
	if len(c.Agents) == 0 && (o.Mode != "" && o.Mode != "handoff") {
		errs = append(errs, fmt.Errorf("orchestration.mode %q needs [[agents]]", o.Mode))
	}
	if o.Entry != "" {
		known("orchestration.entry", o.Entry)
	}
	for _, n := range o.Agents {
		known("orchestration.agents", n)
	}
	for _, st := range o.Stages {
		for _, n := range st {
			known("orchestration.stages", n)
		}
	}
	if o.Mode == "mixed" && len(o.Stages) == 0 {
		errs = append(errs, fmt.Errorf("orchestration.stages: required for mode mixed"))
	}
	if o.Until != "" {
		if _, err := regexp.Compile(o.Until); err != nil {
			errs = append(errs, fmt.Errorf("orchestration.until: %v", err))
		}
	}
	if o.MaxIterations < 0 {
		errs = append(errs, fmt.Errorf("orchestration.max_iterations %d: want >= 0", o.MaxIterations))
	}
	switch c.Durable.Store {
	case "", "bbolt":
	case "redis":
		if c.Durable.Redis == "" {
			errs = append(errs, fmt.Errorf("durable.redis: address required for store redis"))
		}
	default:
		errs = append(errs, fmt.Errorf("durable.store %q: want \"bbolt\" or \"redis\"", c.Durable.Store))
	}
	if c.Durable.LeaseTTL < 0 || (c.Durable.LeaseTTL > 0 && c.Durable.LeaseTTL < 300*time.Millisecond) {
		errs = append(errs, fmt.Errorf("durable.lease_ttl %v: want at least 300ms", c.Durable.LeaseTTL))
	}
	errs = append(errs, validateTemporal(c.Durable)...)
	return errs
}

// temporalNameRE: a Temporal namespace or task queue name as voiced
// accepts it.
var temporalNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

func validateTemporal(d Durable) []error {
	var errs []error
	temporal := false
	switch d.Engine {
	case "", "builtin":
	case "temporal":
		temporal = true
	default:
		errs = append(errs, fmt.Errorf("durable.engine %q: want \"builtin\" or \"temporal\"", d.Engine))
	}
	set := d.TemporalAddress != "" || d.TemporalNamespace != "" || d.TemporalTaskQueue != ""
	if set && !temporal {
		errs = append(errs, fmt.Errorf("durable.temporal_*: only with engine = \"temporal\""))
	}
	if temporal && d.Store != "" {
		errs = append(errs, fmt.Errorf("durable.store %q: not used with engine = \"temporal\" (Temporal keeps the runs)", d.Store))
	}
	if a := d.TemporalAddress; a != "" {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("durable.temporal_address %q: want host:port", a))
		}
	}
	if n := d.TemporalNamespace; n != "" && !temporalNameRE.MatchString(n) {
		errs = append(errs, fmt.Errorf("durable.temporal_namespace %q: want letters, digits, '.', '_' and '-'", n))
	}
	if q := d.TemporalTaskQueue; q != "" && !temporalNameRE.MatchString(q) {
		errs = append(errs, fmt.Errorf("durable.temporal_task_queue %q: want letters, digits, '.', '_' and '-'", q))
	}
	return errs
}
