package agents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Tool is a function a model can call. Call receives the model's arguments
// (a JSON object) and returns the text the model is shown. Call runs under
// the turn context and must return promptly, with ctx's error, when ctx is
// done. Implementations are safe for concurrent use: an agent runs the
// calls of one step in parallel.
type Tool interface {
	Spec() ToolSpec
	Call(ctx context.Context, args json.RawMessage) (string, error)
}

// ToolTimeouter is implemented by tools that bound their own calls (as the
// tools of NewTool do when given WithToolTimeout); an LLMAgent does not
// apply its default ToolTimeout to a tool whose Timeout is positive.
type ToolTimeouter interface {
	Timeout() time.Duration
}

var (
	// ErrToolSchema is returned by NewTool for an argument type it cannot
	// describe, or a bad name or tag.
	ErrToolSchema = errors.New("agents: tool schema")
	// ErrToolArgs wraps every argument validation failure; its text is fed
	// back to the model as the tool's result.
	ErrToolArgs = errors.New("invalid arguments")
	// ErrToolTimeout is the cause of the context a tool call runs under when
	// its timeout expires.
	ErrToolTimeout = errors.New("agents: tool timed out")
)

// ToolOption configures NewTool.
type ToolOption func(*toolOptions)

type toolOptions struct {
	timeout time.Duration
}

// WithToolTimeout bounds each call of the tool: its context is cancelled
// with cause ErrToolTimeout after d, and the model is told the tool timed
// out.
func WithToolTimeout(d time.Duration) ToolOption {
	return func(o *toolOptions) { o.timeout = d }
}

var toolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// NewTool returns a tool whose arguments are the JSON form of A, a struct.
// The JSON Schema offered to the model is derived from A's exported fields:
//
//   - the name is the field's json tag name (fields tagged "-" are skipped,
//     embedded structs are flattened);
//   - string → "string", signed and unsigned integers → "integer" (unsigned
//     with "minimum": 0), floats → "number", bool → "boolean", slices and
//     arrays → "array", structs → "object" with "additionalProperties":
//     false; other kinds (maps, interfaces, channels, []byte) are refused
//     with ErrToolSchema;
//   - a field is required unless it is a pointer (which also accepts null),
//     its json tag says omitempty, or its jsonschema tag says optional;
//   - the jsonschema tag holds comma-separated options: "required",
//     "optional", "enum=a|b|c" (strings, integers or numbers, by the field's
//     type) and "description=..." which must come last and takes the rest of
//     the tag, commas included.
//
// Call validates the arguments strictly against that schema before calling
// fn: a non-object, unknown fields, missing required fields, wrong types,
// fractional integers and values outside an enum are reported as an error
// wrapping ErrToolArgs that names the field, and fn is not called. The
// agent feeds that text back to the model, which can correct itself.
func NewTool[A any](name, description string, fn func(ctx context.Context, args A) (string, error), opts ...ToolOption) (Tool, error) {
	if !toolName.MatchString(name) {
		return nil, fmt.Errorf("%w: bad tool name %q (want [a-zA-Z0-9_-]{1,64})", ErrToolSchema, name)
	}
	if fn == nil {
		return nil, fmt.Errorf("%w: tool %q has no function", ErrToolSchema, name)
	}
	t := reflect.TypeFor[A]()
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: tool %q: arguments must be a struct, not %s", ErrToolSchema, name, t)
	}
	root, err := describe(t, map[reflect.Type]bool{})
	if err != nil {
		return nil, fmt.Errorf("%w: tool %q: %v", ErrToolSchema, name, err)
	}
	var o toolOptions
	for _, opt := range opts {
		opt(&o)
	}
	var buf bytes.Buffer
	root.writeSchema(&buf)
	return &funcTool[A]{
		spec: ToolSpec{Name: name, Description: description, Parameters: json.RawMessage(buf.Bytes())},
		root: root,
		fn:   fn,
		opts: o,
	}, nil
}

// MustTool is NewTool that panics on error, for tools declared at package
// level or in tests.
func MustTool[A any](name, description string, fn func(ctx context.Context, args A) (string, error), opts ...ToolOption) Tool {
	t, err := NewTool(name, description, fn, opts...)
	if err != nil {
		panic(err)
	}
	return t
}

type funcTool[A any] struct {
	spec ToolSpec
	root *schemaNode
	fn   func(context.Context, A) (string, error)
	opts toolOptions
}

func (t *funcTool[A]) Spec() ToolSpec { return t.spec }

func (t *funcTool[A]) Timeout() time.Duration { return t.opts.timeout }

func (t *funcTool[A]) Call(ctx context.Context, raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("{}") // models send "" for tools without arguments
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("%w: not JSON: %v", ErrToolArgs, err)
	}
	if dec.More() {
		return "", fmt.Errorf("%w: trailing data after the arguments object", ErrToolArgs)
	}
	if err := t.root.validate("", v); err != nil {
		return "", fmt.Errorf("%w: %v", ErrToolArgs, err)
	}
	var args A
	if err := json.Unmarshal(raw, &args); err != nil {
		return "", fmt.Errorf("%w: %v", ErrToolArgs, err)
	}
	if t.opts.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, t.opts.timeout, ErrToolTimeout)
		defer cancel()
	}
	out, err := t.fn(ctx, args)
	if err != nil && t.opts.timeout > 0 && errors.Is(context.Cause(ctx), ErrToolTimeout) {
		return "", fmt.Errorf("%w after %v", ErrToolTimeout, t.opts.timeout)
	}
	return out, err
}

// schemaNode is the derived description of one value: it writes the JSON
// Schema and validates decoded arguments against it.
type schemaNode struct {
	typ      string // string, integer, number, boolean, array, object
	unsigned bool
	desc     string
	enum     []string // JSON texts of the allowed values
	nullable bool
	elem     *schemaNode   // array
	fields   []schemaField // object
}

type schemaField struct {
	name     string
	required bool
	node     *schemaNode
}

func describe(t reflect.Type, busy map[reflect.Type]bool) (*schemaNode, error) {
	nullable := false
	if t.Kind() == reflect.Pointer {
		nullable = true
		t = t.Elem()
	}
	n := &schemaNode{nullable: nullable}
	switch t.Kind() {
	case reflect.String:
		n.typ = "string"
	case reflect.Bool:
		n.typ = "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n.typ = "integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n.typ, n.unsigned = "integer", true
	case reflect.Float32, reflect.Float64:
		n.typ = "number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil, fmt.Errorf("unsupported type %s", t)
		}
		elem, err := describe(t.Elem(), busy)
		if err != nil {
			return nil, err
		}
		n.typ, n.elem = "array", elem
	case reflect.Struct:
		if busy[t] {
			return nil, fmt.Errorf("recursive type %s", t)
		}
		busy[t] = true
		defer delete(busy, t)
		n.typ = "object"
		if err := n.addFields(t, busy); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unsupported type %s", t)
	}
	return n, nil
}

func (n *schemaNode) addFields(t reflect.Type, busy map[reflect.Type]bool) error {
	for i := range t.NumField() {
		f := t.Field(i)
		jtag := f.Tag.Get("json")
		if jtag == "-" {
			continue
		}
		name, jopts, _ := strings.Cut(jtag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			if err := n.addFields(f.Type, busy); err != nil {
				return err
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		child, err := describe(f.Type, busy)
		if err != nil {
			return fmt.Errorf("field %s: %w", f.Name, err)
		}
		required := !child.nullable && !slices.Contains(strings.Split(jopts, ","), "omitempty")
		tag := f.Tag.Get("jsonschema")
		for tag != "" {
			var opt string
			if strings.HasPrefix(tag, "description=") {
				child.desc, tag = strings.TrimPrefix(tag, "description="), ""
				break
			}
			opt, tag, _ = strings.Cut(tag, ",")
			switch key, val, _ := strings.Cut(opt, "="); key {
			case "required":
				required = true
			case "optional":
				required = false
			case "enum":
				if err := child.setEnum(val); err != nil {
					return fmt.Errorf("field %s: %w", f.Name, err)
				}
			default:
				return fmt.Errorf("field %s: unknown jsonschema option %q", f.Name, opt)
			}
		}
		for _, have := range n.fields {
			if have.name == name {
				return fmt.Errorf("duplicate field name %q", name)
			}
		}
		n.fields = append(n.fields, schemaField{name: name, required: required, node: child})
	}
	return nil
}

func (n *schemaNode) setEnum(list string) error {
	if list == "" {
		return errors.New("empty enum")
	}
	for _, v := range strings.Split(list, "|") {
		switch n.typ {
		case "string":
			b, _ := json.Marshal(v)
			n.enum = append(n.enum, string(b))
		case "integer":
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return fmt.Errorf("enum value %q is not an integer", v)
			}
			n.enum = append(n.enum, v)
		case "number":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("enum value %q is not a number", v)
			}
			n.enum = append(n.enum, strconv.FormatFloat(f, 'g', -1, 64))
		default:
			return fmt.Errorf("enum on a %s", n.typ)
		}
	}
	return nil
}

// writeSchema writes n as compact JSON Schema with keys in a fixed order
// and properties in declaration order.
func (n *schemaNode) writeSchema(b *bytes.Buffer) {
	b.WriteString(`{"type":"`)
	b.WriteString(n.typ)
	b.WriteByte('"')
	if n.desc != "" {
		d, _ := json.Marshal(n.desc)
		b.WriteString(`,"description":`)
		b.Write(d)
	}
	if len(n.enum) > 0 {
		b.WriteString(`,"enum":[`)
		b.WriteString(strings.Join(n.enum, ","))
		b.WriteByte(']')
	}
	if n.unsigned {
		b.WriteString(`,"minimum":0`)
	}
	switch n.typ {
	case "array":
		b.WriteString(`,"items":`)
		n.elem.writeSchema(b)
	case "object":
		b.WriteString(`,"properties":{`)
		var req []string
		for i, f := range n.fields {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(f.name)
			b.Write(k)
			b.WriteByte(':')
			f.node.writeSchema(b)
			if f.required {
				req = append(req, string(k))
			}
		}
		b.WriteString(`},"required":[`)
		b.WriteString(strings.Join(req, ","))
		b.WriteString(`],"additionalProperties":false`)
	}
	b.WriteByte('}')
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func fieldPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// validate checks a value decoded with UseNumber against n; path names it
// in errors ("" is the arguments object itself).
func (n *schemaNode) validate(path string, v any) error {
	where := path
	if where == "" {
		where = "arguments"
	}
	if v == nil {
		if n.nullable {
			return nil
		}
		return fmt.Errorf("%s: want %s, got null", where, n.typ)
	}
	bad := func() error { return fmt.Errorf("%s: want %s, got %s", where, n.typ, jsonKind(v)) }
	switch n.typ {
	case "string":
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		if len(n.enum) > 0 {
			q, _ := json.Marshal(s)
			if !slices.Contains(n.enum, string(q)) {
				return fmt.Errorf("%s: %s is not one of %s", where, q, strings.Join(n.enum, ", "))
			}
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return bad()
		}
	case "integer", "number":
		num, ok := v.(json.Number)
		if !ok {
			return bad()
		}
		if n.typ == "integer" {
			if _, err := strconv.ParseInt(num.String(), 10, 64); err != nil {
				if _, uerr := strconv.ParseUint(num.String(), 10, 64); uerr != nil || !n.unsigned {
					return fmt.Errorf("%s: want integer, got %s", where, num)
				}
			}
			if n.unsigned && strings.HasPrefix(num.String(), "-") {
				return fmt.Errorf("%s: want a non-negative integer, got %s", where, num)
			}
		} else if _, err := num.Float64(); err != nil {
			return fmt.Errorf("%s: number %s out of range", where, num)
		}
		if len(n.enum) > 0 {
			f, _ := num.Float64()
			if !slices.ContainsFunc(n.enum, func(e string) bool { g, _ := strconv.ParseFloat(e, 64); return g == f }) {
				return fmt.Errorf("%s: %s is not one of %s", where, num, strings.Join(n.enum, ", "))
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return bad()
		}
		for i, e := range arr {
			if err := n.elem.validate(fmt.Sprintf("%s[%d]", where, i), e); err != nil {
				return err
			}
		}
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			i := slices.IndexFunc(n.fields, func(f schemaField) bool { return f.name == k })
			if i < 0 {
				return fmt.Errorf("%s: unknown field", fieldPath(path, k))
			}
			if err := n.fields[i].node.validate(fieldPath(path, k), obj[k]); err != nil {
				return err
			}
		}
		for _, f := range n.fields {
			if _, ok := obj[f.name]; f.required && !ok {
				return fmt.Errorf("%s: missing required field", fieldPath(path, f.name))
			}
		}
	}
	return nil
}
