package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Problem is one thing wrong with a configuration: where, what, and how to
// fix it.
type Problem struct {
	// Line in the config file, or 0 when the problem has no one place
	// (a flag, a missing option).
	Line int
	// Key is the option concerned, dotted ("totem.token", "node[2].addrs").
	Key     string
	Message string
	// Fix says what to change.
	Fix string
}

// String formats the problem as "line N: key: message (fix: ...)".
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		fmt.Fprintf(&b, "%s: ", p.Key)
	}
	b.WriteString(p.Message)
	if p.Fix != "" {
		fmt.Fprintf(&b, " (fix: %s)", p.Fix)
	}
	return b.String()
}

// Problems is a list of problems; as an error it lists them all.
type Problems []Problem

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, "\n")
}

// Err returns ps as an error, or nil when empty.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// ParseConfig decodes a TOML config over the defaults in cfg and returns
// every problem found while decoding (syntax, types, unknown options), each
// with its line. It does not check values; see Check.
func ParseConfig(data []byte, cfg *Config) Problems {
	lines := keyLines(string(data))
	var prims map[string]toml.Primitive
	md, err := toml.Decode(string(data), &prims)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			line := pe.Position.Line
			// The lexer may stand on the newline ending the bad line.
			if st := pe.Position.Start; st > 0 && st <= len(data) {
				line = bytes.Count(data[:st], []byte("\n")) + 1
				if st < len(data) && data[st] == '\n' && st > 0 && line > 1 && pe.Position.Line > line {
					line = pe.Position.Line - 1
				}
			}
			return Problems{{Line: line, Message: "syntax error: " + pe.Message, Fix: "correct the TOML syntax on that line"}}
		}
		return Problems{{Message: err.Error(), Fix: "correct the TOML syntax"}}
	}
	d := decoder{md: md, lines: lines}
	d.decodeStruct(prims, reflect.ValueOf(cfg).Elem(), "")
	sort.SliceStable(d.probs, func(i, j int) bool { return d.probs[i].Line < d.probs[j].Line })
	return d.probs
}

type decoder struct {
	md    toml.MetaData
	lines map[string]int
	probs Problems
}

func (d *decoder) add(key, msg, fix string) {
	d.probs = append(d.probs, Problem{Line: d.line(key), Key: key, Message: msg, Fix: fix})
}

// line finds the line of a dotted key, trying the key without array
// indexes when the exact one is unknown.
func (d *decoder) line(key string) int {
	if l, ok := d.lines[key]; ok {
		return l
	}
	return 0
}

func fieldsByTag(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("toml"), ",")[0]
		if tag != "" && tag != "-" {
			m[tag] = i
		}
	}
	return m
}

func (d *decoder) decodeStruct(prims map[string]toml.Primitive, v reflect.Value, prefix string) {
	fields := fieldsByTag(v.Type())
	keys := make([]string, 0, len(prims))
	for k := range prims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := prims[k]
		key := prefix + k
		i, ok := fields[k]
		if !ok {
			names := make([]string, 0, len(fields))
			for n := range fields {
				names = append(names, n)
			}
			fix := "remove it"
			if s := closest(k, names); s != "" {
				fix = fmt.Sprintf("did you mean %q?", s)
			}
			d.add(key, "unknown option", fix)
			continue
		}
		f := v.Field(i)
		switch {
		case f.Kind() == reflect.Struct && f.Type() != reflect.TypeOf(Duration(0)):
			var sub map[string]toml.Primitive
			if err := d.md.PrimitiveDecode(p, &sub); err != nil {
				d.add(key, "must be a table", fmt.Sprintf("write it as a [%s] section", key))
				continue
			}
			d.decodeStruct(sub, f, key+".")
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
			var subs []map[string]toml.Primitive
			if err := d.md.PrimitiveDecode(p, &subs); err != nil {
				d.add(key, "must be an array of tables", fmt.Sprintf("write each entry as a [[%s]] section", key))
				continue
			}
			f.Set(reflect.MakeSlice(f.Type(), len(subs), len(subs)))
			for j, sub := range subs {
				d.decodeStruct(sub, f.Index(j), fmt.Sprintf("%s[%d].", key, j))
			}
		default:
			tmp := reflect.New(f.Type())
			if err := d.md.PrimitiveDecode(p, tmp.Interface()); err != nil {
				d.add(key, cleanTOMLError(err), "give it a value of type "+typeWord(f.Type()))
				continue
			}
			f.Set(tmp.Elem())
		}
	}
}

var tomlPrefix = regexp.MustCompile(`^toml: (line \d+ )?(\(last key "[^"]*"\): )?`)

func cleanTOMLError(err error) string {
	return tomlPrefix.ReplaceAllString(err.Error(), "")
}

func typeWord(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(Duration(0)):
		return "milliseconds (integer) or a duration string like \"250ms\""
	case t.Kind() == reflect.String:
		return "string (in quotes)"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return "array of strings, like [\"a\", \"b\"]"
	case t.Kind() == reflect.Slice:
		return "array of integers, like [1000, 1001]"
	case t.Kind() == reflect.Bool:
		return "true or false"
	}
	return "integer"
}

// keyLines maps each dotted key of a TOML text ("totem.token",
// "node[1].addrs") to the line it is set on. It understands the subset of
// TOML a config uses: [table], [[array]] and key = value lines.
func keyLines(text string) map[string]int {
	out := map[string]int{}
	table := ""
	counts := map[string]int{}
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(stripComment(raw))
		switch {
		case line == "":
		case strings.HasPrefix(line, "[["):
			name := strings.TrimSpace(strings.Trim(line, "[] "))
			idx := counts[name]
			counts[name]++
			table = fmt.Sprintf("%s[%d]", name, idx)
			out[table] = i + 1
			if _, ok := out[name]; !ok {
				out[name] = i + 1
			}
		case strings.HasPrefix(line, "["):
			table = strings.TrimSpace(strings.Trim(line, "[] "))
			out[table] = i + 1
		default:
			eq := strings.IndexByte(line, '=')
			if eq <= 0 {
				continue
			}
			k := strings.Trim(strings.TrimSpace(line[:eq]), `"'`)
			if table != "" {
				k = table + "." + k
			}
			if _, ok := out[k]; !ok {
				out[k] = i + 1
			}
		}
	}
	return out
}

func stripComment(s string) string {
	inStr := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr != 0 && c == '\\' && inStr == '"':
			i++
		case inStr != 0 && c == inStr:
			inStr = 0
		case inStr == 0 && (c == '"' || c == '\''):
			inStr = c
		case inStr == 0 && c == '#':
			return s[:i]
		}
	}
	return s
}

// closest returns the candidate within edit distance 3 of s, if any.
func closest(s string, cands []string) string {
	best, bestD := "", 4
	sort.Strings(cands)
	for _, c := range cands {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// lineOf is used by Check to place value problems.
func lineOf(lines map[string]int, key string) int {
	if l, ok := lines[key]; ok {
		return l
	}
	// An option inside a table that is not set: point at the table.
	if i := strings.LastIndexByte(key, '.'); i > 0 {
		if l, ok := lines[key[:i]]; ok {
			return l
		}
	}
	return 0
}
