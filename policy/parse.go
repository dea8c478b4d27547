package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

const (
	// maxNodes bounds the YAML nodes Parse visits, so that aliases
	// cannot make a small file expensive.
	maxNodes = 1 << 18
	// maxPatterns bounds the image patterns of a configuration, which
	// are compared pairwise for ties.
	maxPatterns = 10000
	// maxErrors bounds the problems Parse reports.
	maxErrors = 100
)

// Option configures [Parse].
type Option func(*parseConfig) error

// parseConfig holds the settings of one Parse call.
type parseConfig struct {
	readFile func(path string) ([]byte, error)
}

// WithReadFile sets how Parse reads the files a configuration
// references. Only public key files (signers' key.path) are read, to
// parse and fingerprint the keys; other paths (TLS files, CA bundles,
// password files, Docker configs, trusted roots, the TUF root) are
// resolved to absolute paths but neither read nor checked for existence.
// fn receives absolute paths. The default is [os.ReadFile].
func WithReadFile(fn func(path string) ([]byte, error)) Option {
	return func(c *parseConfig) error {
		if fn == nil {
			return errors.New("policy: WithReadFile: nil function")
		}
		c.readFile = fn
		return nil
	}
}

// Parse reads the YAML configuration r, validates it and returns the
// compiled [Config]. filename names the configuration in messages, and
// relative paths in it resolve against filepath.Dir(filename).
//
// Parse is strict: unknown keys, duplicate keys, values of the wrong
// type, unknown enumeration values and references to undefined names are
// errors, because a typo must never weaken a policy. Every problem found
// is reported, each as a [*ParseError] naming file:line, joined with
// [errors.Join] in line order, e.g.
//
//	pullgate.yaml:12: policies[0].signers[1]: unknown field "keyles"; did you mean "keyless"?
//
// Errors from options or from reading r are returned as they are.
func Parse(filename string, r io.Reader, opts ...Option) (*Config, error) {
	pc := parseConfig{readFile: os.ReadFile}
	for _, opt := range opts {
		if err := opt(&pc); err != nil {
			return nil, err
		}
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filename, err)
	}
	dir, err := filepath.Abs(filepath.Dir(filename))
	if err != nil {
		return nil, fmt.Errorf("resolve directory of %s: %w", filename, err)
	}
	d := &decoder{file: filename, dir: dir, readFile: pc.readFile}
	var cfg *Config
	if doc := d.document(data); doc != nil {
		cfg = d.config(doc)
	}
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
		errs := make([]error, len(d.errs), len(d.errs)+1)
		for i, e := range d.errs {
			errs[i] = e
		}
		if d.tooMany {
			errs = append(errs, &ParseError{File: filename, Err: fmt.Errorf("more than %d problems; fix these first", maxErrors)})
		}
		return nil, errors.Join(errs...)
	}
	cfg.Generation = generation(data, d.keyFiles)
	return cfg, nil
}

// generation is the hex SHA-256 over the configuration and key files,
// each preceded by its length.
func generation(config []byte, keyFiles [][]byte) string {
	h := sha256.New()
	var n [8]byte
	for _, part := range append([][]byte{config}, keyFiles...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// decoder walks a YAML document, building a Config and collecting every
// problem it finds.
type decoder struct {
	file     string
	dir      string // absolute directory of file
	readFile func(string) ([]byte, error)

	errs       []*ParseError
	tooMany    bool // more than maxErrors problems; the rest are dropped
	nodes      int
	overBudget bool

	keyFiles    [][]byte      // contents of key files, in file order
	patterns    []rulePattern // all rules' patterns, in file order
	upstreamsOK bool          // upstreams parsed without errors
}

// add records a problem.
func (d *decoder) add(line int, path string, err error) {
	if len(d.errs) >= maxErrors {
		d.tooMany = true
		return
	}
	d.errs = append(d.errs, &ParseError{File: d.file, Line: line, Path: path, Err: err})
}

// errorf records a problem at node n.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.add(line, path, fmt.Errorf(format, args...))
}

var yamlLineError = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// document decodes data into a YAML node tree and returns the root of
// its single document, or nil after recording why there is none.
func (d *decoder) document(data []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 panics on a few malformed inputs; report, never crash.
		if r := recover(); r != nil {
			d.add(0, "", fmt.Errorf("invalid YAML: %v", r))
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.add(1, "", errors.New("empty configuration: at least upstreams must be set"))
		} else {
			d.yamlError(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.yamlError(err)
		return nil
	default:
		d.add(extra.Line, "", errors.New("more than one YAML document: a configuration is one document"))
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		d.add(1, "", errors.New("empty configuration: at least upstreams must be set"))
		return nil
	}
	return doc.Content[0]
}

// yamlError records a yaml.v3 syntax error with its line.
func (d *decoder) yamlError(err error) {
	if m := yamlLineError.FindStringSubmatch(err.Error()); m != nil {
		if line, convErr := strconv.Atoi(m[1]); convErr == nil {
			d.add(line, "", fmt.Errorf("invalid YAML: %s", m[2]))
			return
		}
	}
	d.add(0, "", fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: ")))
}

// resolve follows aliases and counts the node against the budget. It
// returns nil, after recording a problem, when the budget is exhausted.
func (d *decoder) resolve(n *yaml.Node, path string) *yaml.Node {
	for hops := 0; n != nil && n.Kind == yaml.AliasNode; hops++ {
		if hops > 100 || n.Alias == nil {
			d.errorf(n, path, "alias cannot be resolved")
			return nil
		}
		n = n.Alias
	}
	d.nodes++
	if d.nodes > maxNodes {
		if !d.overBudget {
			d.overBudget = true
			d.errorf(n, path, "configuration too large: more than %d values (after expanding aliases)", maxNodes)
		}
		return nil
	}
	return n
}

// describe names the YAML type of n for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean"
		case "!!int", "!!float":
			return "a number"
		case "!!str":
			return "a string"
		}
		return fmt.Sprintf("a %s value", n.ShortTag())
	}
	return "an unknown YAML node"
}

// join appends a field name to a path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// index appends a list index to a path.
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// mapping is a YAML mapping whose keys have been checked.
type mapping struct {
	node *yaml.Node
	path string
	vals map[string]*yaml.Node
}

// has reports whether the field is present.
func (m *mapping) has(name string) bool {
	_, ok := m.vals[name]
	return ok
}

// pair is one entry of a free-form mapping.
type pair struct {
	key   string
	keyN  *yaml.Node
	value *yaml.Node
}

// pairs checks that n is a mapping with unique string keys and returns
// its entries in order.
func (d *decoder) pairs(n *yaml.Node, path string) ([]pair, *yaml.Node, bool) {
	n = d.resolve(n, path)
	if n == nil {
		return nil, nil, false
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping, not %s", describe(n))
		return nil, n, false
	}
	var out []pair
	seen := make(map[string]int)
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.resolve(n.Content[i], path)
		if k == nil {
			return nil, n, false
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			d.errorf(k, path, "keys must be strings, not %s", describe(k))
			ok = false
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.errorf(k, path, "merge keys (<<) are not supported: write the fields out")
			ok = false
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, path, "duplicate key %q (first at line %d)", k.Value, first)
			ok = false
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{key: k.Value, keyN: k, value: n.Content[i+1]})
	}
	return out, n, ok
}

// mapping checks that n is a mapping whose keys are all in known, and
// returns it. Unknown keys are reported with the closest known key.
func (d *decoder) mapping(n *yaml.Node, path string, known []string) (*mapping, bool) {
	ps, node, _ := d.pairs(n, path)
	if node == nil || node.Kind != yaml.MappingNode {
		return nil, false
	}
	m := &mapping{node: node, path: path, vals: make(map[string]*yaml.Node, len(ps))}
	for _, p := range ps {
		if !slices.Contains(known, p.key) {
			d.errorf(p.keyN, path, "%s", unknownField(p.key, known))
			continue
		}
		m.vals[p.key] = p.value
	}
	return m, true
}

// unknownField words the problem with an unknown key.
func unknownField(key string, known []string) string {
	switch key {
	case "password", "token", "secret":
		if slices.Contains(known, "passwordFile") {
			return fmt.Sprintf("unknown field %q: secrets never go in the configuration; put the secret in a file and name it with passwordFile", key)
		}
	}
	msg := fmt.Sprintf("unknown field %q", key)
	if s := suggest(key, known); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	} else {
		msg += "; known fields: " + strings.Join(known, ", ")
	}
	return msg
}

// require reports every absent field of names, and whether all are
// present.
func (d *decoder) require(m *mapping, names ...string) bool {
	ok := true
	for _, name := range names {
		if !m.has(name) {
			d.errorf(m.node, m.path, "missing required field %q", name)
			ok = false
		}
	}
	return ok
}

// scalar checks that n is a non-empty scalar and returns its text as
// written (so 0123 stays "0123").
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	n = d.resolve(n, path)
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "must be a string, not %s", describe(n))
		return "", false
	}
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
	case "!!null":
		d.errorf(n, path, "must be a string, not null")
		return "", false
	default:
		d.errorf(n, path, "must be a string, not a %s value", tag)
		return "", false
	}
	if n.Value == "" {
		d.errorf(n, path, "must not be empty")
		return "", false
	}
	return n.Value, true
}

// str returns the string field name of m, and whether it is present and
// valid.
func (d *decoder) str(m *mapping, name string) (string, bool) {
	n, ok := m.vals[name]
	if !ok {
		return "", false
	}
	return d.scalar(n, join(m.path, name))
}

// line returns the line of field name's value where it is written, or
// the line of m when it is absent.
func (m *mapping) line(name string) int {
	if n, ok := m.vals[name]; ok {
		return n.Line
	}
	return m.node.Line
}

// filePath returns the path field name of m resolved against the
// configuration's directory.
func (d *decoder) filePath(m *mapping, name string) (string, bool) {
	n, ok := m.vals[name]
	if !ok {
		return "", false
	}
	return d.pathValue(n, join(m.path, name))
}

// pathValue returns the path n holds, resolved against the
// configuration's directory.
func (d *decoder) pathValue(n *yaml.Node, path string) (string, bool) {
	p, ok := d.scalar(n, path)
	if !ok {
		return "", false
	}
	if strings.IndexByte(p, 0) >= 0 {
		d.errorf(n, path, "path contains a NUL byte")
		return "", false
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(d.dir, p)
	}
	return filepath.Clean(p), true
}

// list returns the items of the list field name of m.
func (d *decoder) list(m *mapping, name string) ([]*yaml.Node, bool) {
	n, ok := m.vals[name]
	if !ok {
		return nil, false
	}
	path := join(m.path, name)
	n = d.resolve(n, path)
	if n == nil {
		return nil, false
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "must be a list, not %s", describe(n))
		return nil, false
	}
	return n.Content, true
}

// stringList returns the non-empty list of strings field name of m with
// the node of each item.
func (d *decoder) stringList(m *mapping, name string) ([]string, []*yaml.Node, bool) {
	items, ok := d.list(m, name)
	if !ok {
		return nil, nil, false
	}
	path := join(m.path, name)
	if len(items) == 0 {
		d.add(m.line(name), path, errors.New("must not be empty"))
		return nil, nil, false
	}
	out := make([]string, 0, len(items))
	nodes := make([]*yaml.Node, 0, len(items))
	for i, item := range items {
		s, ok := d.scalar(item, index(path, i))
		if !ok {
			continue
		}
		out = append(out, s)
		nodes = append(nodes, item)
	}
	return out, nodes, len(out) == len(items)
}

// integer returns the integer field name of m.
func (d *decoder) integer(m *mapping, name string) (int64, bool) {
	n, ok := m.vals[name]
	if !ok {
		return 0, false
	}
	path := join(m.path, name)
	n = d.resolve(n, path)
	if n == nil {
		return 0, false
	}
	var v int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		d.errorf(n, path, "must be an integer, not %s", describe(n))
		return 0, false
	}
	return v, true
}

// positive returns the positive integer field name of m.
func (d *decoder) positive(m *mapping, name string) (int64, bool) {
	v, ok := d.integer(m, name)
	if ok && v <= 0 {
		d.add(m.line(name), join(m.path, name), fmt.Errorf("must be positive, not %d", v))
		return 0, false
	}
	return v, ok
}

// enum returns the field name of m, which must be one of values.
func (d *decoder) enum(m *mapping, name string, values ...string) (string, bool) {
	v, ok := d.str(m, name)
	if !ok {
		return "", false
	}
	if !slices.Contains(values, v) {
		msg := fmt.Sprintf("unknown value %q: want %s", v, strings.Join(values, " or "))
		if s := suggest(v, values); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		d.add(m.line(name), join(m.path, name), errors.New(msg))
		return "", false
	}
	return v, true
}
