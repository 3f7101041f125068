package provider_test

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"

	sttdeepgram "github.com/voiced-dev/voiced/processors/stt/deepgram"
	sttfailover "github.com/voiced-dev/voiced/processors/stt/failover"
	sttopenai "github.com/voiced-dev/voiced/processors/stt/openai"
	"github.com/voiced-dev/voiced/processors/tts/cartesia"
	"github.com/voiced-dev/voiced/processors/tts/elevenlabs"
	ttsfailover "github.com/voiced-dev/voiced/processors/tts/failover"
	ttsopenai "github.com/voiced-dev/voiced/processors/tts/openai"
)

// validator is a provider Config.
type validator interface{ Validate() error }

// The provider tables of the examples decode strictly into the providers'
// Config types and validate, and every name in a failover list has a
// table or is an embedded engine. (Until internal/config loads these
// tables, this is their check-config.)
func TestExampleProviderTables(t *testing.T) {
	for _, env := range []string{"OPENAI_API_KEY", "DEEPGRAM_API_KEY", "ELEVENLABS_API_KEY", "CARTESIA_API_KEY", "GROQ_API_KEY"} {
		t.Setenv(env, "test-key")
	}
	sections := map[string]map[string]func() validator{
		"stt": {
			"openai":   func() validator { return &sttopenai.Config{} },
			"deepgram": func() validator { return &sttdeepgram.Config{} },
		},
		"tts": {
			"openai":     func() validator { return &ttsopenai.Config{} },
			"elevenlabs": func() validator { return &elevenlabs.Config{} },
			"cartesia":   func() validator { return &cartesia.Config{} },
		},
	}
	embedded := map[string][]string{"stt": {"sphinx"}, "tts": {"flite"}}
	files := []string{"openai.toml", "self-hosted.toml", "deepgram-elevenlabs.toml"}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := toml.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			for sec, providers := range sections {
				tbl, _ := doc[sec].(map[string]any)
				if tbl == nil {
					t.Fatalf("no [%s]", sec)
				}
				var failover []string
				for key, v := range tbl {
					switch key {
					case "provider":
						name, _ := v.(string)
						if _, ok := providers[name]; !ok {
							t.Errorf("[%s] provider %q", sec, name)
						}
					case "resilience":
						var c any = &sttfailover.Config{}
						if sec == "tts" {
							c = &ttsfailover.Config{}
						}
						strict(t, sec+".resilience", v, c)
						if sec == "stt" {
							failover = c.(*sttfailover.Config).Failover
						} else {
							failover = c.(*ttsfailover.Config).Failover
						}
					default:
						mk, ok := providers[key]
						if !ok {
							t.Errorf("[%s] unknown key %q", sec, key)
							continue
						}
						c := mk()
						strict(t, sec+"."+key, v, c)
						if err := c.Validate(); err != nil {
							t.Errorf("[%s.%s]: %v", sec, key, err)
						}
					}
				}
				if _, ok := tbl[tbl["provider"].(string)]; !ok {
					t.Errorf("[%s] provider %q has no table", sec, tbl["provider"])
				}
				for _, f := range failover {
					if _, ok := tbl[f]; !ok && !slices.Contains(embedded[sec], f) {
						t.Errorf("[%s.resilience] failover %q has no table", sec, f)
					}
				}
			}
		})
	}
}

// strict decodes v (a decoded TOML table) into c, refusing unknown keys.
// Duration strings become nanoseconds first, as internal/config's decoder
// does for time.Duration fields.
func strict(t *testing.T, where string, v, c any) {
	t.Helper()
	tbl := maps.Clone(v.(map[string]any))
	for k, x := range tbl {
		if s, ok := x.(string); ok {
			if d, err := time.ParseDuration(s); err == nil && d != 0 {
				tbl[k] = int64(d)
			}
		}
	}
	b, err := toml.Marshal(tbl)
	if err != nil {
		t.Fatal(err)
	}
	d := toml.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(c); err != nil {
		t.Errorf("[%s]: %v", where, fmt.Sprint(err))
	}
}
