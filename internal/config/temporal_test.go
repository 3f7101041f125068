package config_test

import (
	"strings"
	"testing"

	"github.com/voiced-dev/voiced/internal/config"
)

func TestDurableEngineTemporal(t *testing.T) {
	c, err := config.Parse([]byte("[durable]\nengine = \"temporal\"\ntemporal_address = \"temporal.internal:7233\"\ntemporal_namespace = \"calls\"\ntemporal_task_queue = \"voiced-eu\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Durable; d.Engine != "temporal" || d.TemporalAddress != "temporal.internal:7233" || d.TemporalNamespace != "calls" || d.TemporalTaskQueue != "voiced-eu" {
		t.Errorf("durable = %+v", d)
	}
	for _, tc := range []struct{ toml, want string }{
		{"engine = \"cadence\"", `durable.engine "cadence": want "builtin" or "temporal"`},
		{"temporal_address = \"x:1\"", "durable.temporal_*: only with engine = \"temporal\""},
		{"engine = \"temporal\"\nstore = \"redis\"\nredis = \"r:6379\"", `durable.store "redis": not used with engine = "temporal"`},
		{"engine = \"temporal\"\ntemporal_address = \"nohost\"", `durable.temporal_address "nohost": want host:port`},
		{"engine = \"temporal\"\ntemporal_namespace = \"a b\"", `durable.temporal_namespace "a b"`},
		{"engine = \"temporal\"\ntemporal_task_queue = \"q/1\"", `durable.temporal_task_queue "q/1"`},
	} {
		_, err := config.Parse([]byte("[durable]\n" + tc.toml + "\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.toml, err, tc.want)
		}
	}
}
