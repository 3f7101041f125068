package jsonschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Parse reads a JSON Schema written by hand (a tool declared in a
// configuration file) in the subset that For writes: "type" (string,
// integer, number, boolean, array, object), "description", "enum",
// "minimum": 0 on integers, "items", "properties", "required" and
// "additionalProperties" (absent or false: objects are always strict).
// "title" and "$schema" are accepted and ignored. Any other keyword, a
// required name that is not a property, or a root that is not an object
// is refused with ErrType, naming where.
func Parse(data []byte) (*Schema, error) {
	root, err := parseNode("(root)", data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrType, err)
	}
	if root.typ != "object" || root.nullable {
		return nil, fmt.Errorf("%w: the arguments schema must be an object", ErrType)
	}
	var b bytes.Buffer
	root.writeSchema(&b)
	return &Schema{root: root, text: b.Bytes()}, nil
}

func parseNode(where string, data []byte) (*node, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: want a schema object: %v", where, err)
	}
	var typ string
	if err := json.Unmarshal(raw["type"], &typ); err != nil || typ == "" {
		return nil, fmt.Errorf("%s: \"type\" must be a string", where)
	}
	n := &node{typ: typ}
	switch typ {
	case "string", "integer", "number", "boolean", "array", "object":
	default:
		return nil, fmt.Errorf("%s: unknown type %q", where, typ)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var required []string
	for _, k := range keys {
		v := raw[k]
		switch k {
		case "type", "title", "$schema":
		case "description":
			if err := json.Unmarshal(v, &n.desc); err != nil {
				return nil, fmt.Errorf("%s: \"description\" must be a string", where)
			}
		case "enum":
			var vals []json.RawMessage
			if err := json.Unmarshal(v, &vals); err != nil || len(vals) == 0 {
				return nil, fmt.Errorf("%s: \"enum\" must be a non-empty array", where)
			}
			var texts []string
			for _, e := range vals {
				var s string
				if typ == "string" {
					if json.Unmarshal(e, &s) != nil {
						return nil, fmt.Errorf("%s: enum value %s is not a string", where, e)
					}
					q, _ := json.Marshal(s)
					s = string(q)
				} else {
					s = string(bytes.TrimSpace(e))
				}
				texts = append(texts, s)
			}
			if typ != "string" {
				if err := n.setEnum(strings.Join(texts, "|")); err != nil {
					return nil, fmt.Errorf("%s: %v", where, err)
				}
			} else {
				n.enum = texts
			}
		case "minimum":
			if typ != "integer" || string(bytes.TrimSpace(v)) != "0" {
				return nil, fmt.Errorf("%s: only \"minimum\": 0 on an integer is supported", where)
			}
			n.unsigned = true
		case "items":
			if typ != "array" {
				return nil, fmt.Errorf("%s: \"items\" on a %s", where, typ)
			}
			elem, err := parseNode(where+"[]", v)
			if err != nil {
				return nil, err
			}
			n.elem = elem
		case "properties":
			if typ != "object" {
				return nil, fmt.Errorf("%s: \"properties\" on a %s", where, typ)
			}
			if err := n.parseProperties(where, v); err != nil {
				return nil, err
			}
		case "required":
			if typ != "object" {
				return nil, fmt.Errorf("%s: \"required\" on a %s", where, typ)
			}
			if err := json.Unmarshal(v, &required); err != nil {
				return nil, fmt.Errorf("%s: \"required\" must be an array of names", where)
			}
		case "additionalProperties":
			if string(bytes.TrimSpace(v)) != "false" {
				return nil, fmt.Errorf("%s: only \"additionalProperties\": false is supported", where)
			}
		default:
			return nil, fmt.Errorf("%s: keyword %q is not supported", where, k)
		}
	}
	if typ == "array" && n.elem == nil {
		return nil, fmt.Errorf("%s: an array needs \"items\"", where)
	}
	for _, r := range required {
		i := slices.IndexFunc(n.fields, func(f field) bool { return f.name == r })
		if i < 0 {
			return nil, fmt.Errorf("%s: required %q is not a property", where, r)
		}
		n.fields[i].required = true
	}
	return n, nil
}

// parseProperties reads an object's properties in the order written.
func (n *node) parseProperties(where string, data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("%s: \"properties\" must be an object", where)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%s: properties: %v", where, err)
		}
		name := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("%s: properties: %v", where, err)
		}
		if slices.ContainsFunc(n.fields, func(f field) bool { return f.name == name }) {
			return fmt.Errorf("%s: duplicate property %q", where, name)
		}
		child, err := parseNode(fieldPath(strings.TrimPrefix(where, "(root)"), name), v)
		if err != nil {
			return err
		}
		n.fields = append(n.fields, field{name: name, node: child})
	}
	return nil
}
