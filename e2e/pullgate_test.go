//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Pullgate is a running `pullgate serve` (the built binary) on a loopback
// port, with its config in its own directory and its log captured.
type Pullgate struct {
	// Addr is 127.0.0.1:<port>, pullgate's host for image references.
	Addr string
	// Dir holds the config and the files it references.
	Dir string
	// Config is the config file's path (pullgate verify takes it too).
	Config string

	bed     *testbed
	proc    *process
	stopped bool   // Stop was called: an exit before that is a crash
	past    string // output of processes before the last Restart
}

// startPullgate writes configYAML (without a listen: key: the harness
// picks the port) and files (paths relative to the config, e.g.
// "keys/release.pub") into a fresh directory, runs `pullgate serve` on a
// free loopback port, and waits until GET /v2/ answers. At the end of the
// test it is stopped with SIGTERM and must exit 0 having logged no
// error-level line.
//
// The config must name loopback upstreams only; anything else fails the
// test before pullgate starts.
func (b *testbed) startPullgate(t testing.TB, configYAML string, files map[string][]byte) *Pullgate {
	t.Helper()
	checkLoopbackConfig(t, configYAML)
	p := &Pullgate{bed: b, Dir: b.mkdir(t, "pullgate-"+randomHex(t, 4))}
	p.Config = filepath.Join(p.Dir, "pullgate.yaml")
	for rel, data := range files {
		path := filepath.Join(p.Dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if p.proc == nil {
			return
		}
		switch {
		case p.Running():
			p.Stop(t)
		case !p.stopped:
			t.Errorf("pullgate exited on its own during the test (%v)", p.proc.err)
		}
		if errs := p.errorLines(); len(errs) > 0 {
			t.Errorf("pullgate logged error-level lines:\n%s", strings.Join(errs, "\n"))
		}
		if t.Failed() {
			t.Logf("pullgate log (last lines):\n%s", tail(p.Logs(), 60))
		}
	})
	for attempt := 1; ; attempt++ {
		p.Addr = freeLoopbackAddr(t)
		cfg := fmt.Sprintf("# written by the pullgate e2e suite\nlisten: %s\n%s", p.Addr, configYAML)
		if err := os.WriteFile(p.Config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		p.proc = b.startProcess(t, "pullgate", nil, b.tools.pullgate,
			"serve", "--config", p.Config, "--log-format", "json", "--log-level", "info")
		err := p.proc.waitReady(t, p.URL()+"/v2/")
		if err == nil {
			return p
		}
		if !isAddrInUse(err) || attempt == 3 {
			p.stopped = true // reported here, not again by the cleanup
			t.Fatal(err)
		}
	}
}

// checkLoopbackConfig fails the test unless every upstream endpoint of
// configYAML is a loopback address and nothing would be fetched from the
// network (no TUF), and the YAML leaves listen to the harness.
func checkLoopbackConfig(t testing.TB, configYAML string) {
	t.Helper()
	var cfg struct {
		Listen    *string `yaml:"listen"`
		TUF       any     `yaml:"tuf"`
		Upstreams []struct {
			Registry string `yaml:"registry"`
			Endpoint string `yaml:"endpoint"`
		} `yaml:"upstreams"`
	}
	if err := yaml.Unmarshal([]byte(configYAML), &cfg); err != nil {
		t.Fatalf("pullgate config is not YAML: %v\n%s", err, configYAML)
	}
	if cfg.Listen != nil {
		t.Fatalf("pullgate config sets listen: %q; leave it out, startPullgate picks a loopback port", *cfg.Listen)
	}
	if cfg.TUF != nil {
		t.Fatal("pullgate config sets tuf: the e2e suite never reaches the network")
	}
	for _, u := range cfg.Upstreams {
		ep, err := url.Parse(u.Endpoint)
		ip := net.ParseIP(strings.Trim(ep.Hostname(), "[]"))
		if err != nil || ip == nil || !ip.IsLoopback() {
			t.Fatalf("upstream %s has endpoint %q: the e2e suite allows loopback IP endpoints only", u.Registry, u.Endpoint)
		}
	}
}

// Stop sends SIGTERM and waits; pullgate must drain and exit 0.
func (p *Pullgate) Stop(t testing.TB) {
	t.Helper()
	if !p.Running() {
		t.Fatalf("pullgate at %s is not running", p.Addr)
	}
	start := time.Now()
	p.stopped = true
	st, killed := p.proc.stop(syscall.SIGTERM)
	t.Logf("stopped pullgate (pid %d) in %v: %v", p.proc.pid(), time.Since(start).Round(time.Millisecond), st)
	switch {
	case killed:
		t.Errorf("pullgate (pid %d) did not exit within %v of SIGTERM and was killed", p.proc.pid(), stopTimeout)
	case st.ExitCode() != 0:
		t.Errorf("pullgate exited with %v after SIGTERM, want exit 0", st)
	case !strings.Contains(p.proc.output(), `"msg":"stopped"`):
		t.Errorf("pullgate exited 0 but never logged \"stopped\"")
	}
}

// Restart stops pullgate and starts it again on the same address with
// configYAML (and files, as for startPullgate) as its config: a policy
// change, as an operator rolls it out. Caches start empty.
func (p *Pullgate) Restart(t testing.TB, configYAML string, files map[string][]byte) {
	t.Helper()
	checkLoopbackConfig(t, configYAML)
	p.Stop(t)
	p.past += p.proc.output() + "--- e2e: pullgate restarted ---\n"
	for rel, data := range files {
		path := filepath.Join(p.Dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf("# written by the pullgate e2e suite\nlisten: %s\n%s", p.Addr, configYAML)
	if err := os.WriteFile(p.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p.stopped = false
	p.proc = p.bed.startProcess(t, "pullgate", nil, p.bed.tools.pullgate,
		"serve", "--config", p.Config, "--log-format", "json", "--log-level", "info")
	if err := p.proc.waitReady(t, p.URL()+"/v2/"); err != nil {
		p.stopped = true
		t.Fatal(err)
	}
}

// Running reports whether the pullgate process is alive.
func (p *Pullgate) Running() bool { return p.proc != nil && !p.proc.exited() }

// URL is pullgate's base URL (plain HTTP).
func (p *Pullgate) URL() string { return "http://" + p.Addr }

// Ref is the image reference repoRef (e.g. "e2e/app:v1") through pullgate.
func (p *Pullgate) Ref(repoRef string) string { return p.Addr + "/" + repoRef }

// Logs is everything pullgate wrote to stdout and stderr so far, across
// restarts.
func (p *Pullgate) Logs() string { return p.past + p.proc.output() }

// LogLines are pullgate's JSON log lines whose msg is msg (all lines for
// ""), decoded.
func (p *Pullgate) LogLines(msg string) []map[string]any {
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.Logs()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if msg == "" || m["msg"] == msg {
			lines = append(lines, m)
		}
	}
	return lines
}

func (p *Pullgate) errorLines() []string {
	var out []string
	for _, l := range strings.Split(p.Logs(), "\n") {
		if strings.Contains(l, `"level":"ERROR"`) {
			out = append(out, l)
		}
	}
	return out
}

// Request is one line of pullgate's access log.
type Request struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Query     string `json:"query"`
	Status    int    `json:"status"`
	UserAgent string `json:"userAgent"`
}

func (r Request) String() string {
	s := r.Method + " " + r.Path
	if r.Query != "" {
		s += "?" + r.Query
	}
	return fmt.Sprintf("%s → %d (%s)", s, r.Status, r.UserAgent)
}

// Requests are the access log lines so far, in order.
func (p *Pullgate) Requests() []Request {
	var rs []Request
	sc := bufio.NewScanner(strings.NewReader(p.Logs()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), `"msg":"request"`) {
			continue
		}
		var r Request
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			rs = append(rs, r)
		}
	}
	return rs
}

// Decision is one line of pullgate's decision log: one verification.
type Decision struct {
	Level   string   `json:"level"`
	Image   string   `json:"image"`
	Digest  string   `json:"digest"`
	Policy  string   `json:"policy"`
	Verdict string   `json:"verdict"` // allow, deny or error
	Signers []string `json:"signers"`
	Layouts []string `json:"layouts"`
	// Attestations, when the proxy logs them apart from the signatures,
	// are `<requirement> by "<signer>" via <layout> <artifact>` lines.
	Attestations []string `json:"attestations"`
	Reasons      []string `json:"reasons"`
	Mode         string   `json:"mode"`
	Error        string   `json:"error"`
	Request      string   `json:"request"`
	Raw          string   `json:"-"`
}

// Decisions are the decision log lines so far, in order.
func (p *Pullgate) Decisions() []Decision {
	var ds []Decision
	sc := bufio.NewScanner(strings.NewReader(p.Logs()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), `"msg":"decision"`) {
			continue
		}
		var d Decision
		if json.Unmarshal(sc.Bytes(), &d) == nil {
			d.Raw = sc.Text()
			ds = append(ds, d)
		}
	}
	return ds
}

// WaitDecision returns the latest decision for image@dgst, waiting a
// little for it: the log reaches the buffer through a pipe, so a line
// written before a response may be read just after the client is done.
func (p *Pullgate) WaitDecision(t testing.TB, image, dgst string) Decision {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ds := p.Decisions()
		for i := len(ds) - 1; i >= 0; i-- {
			if ds[i].Image == image && ds[i].Digest == dgst {
				return ds[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no decision log line for %s@%s; decisions so far:\n%s", image, dgst, rawDecisions(ds))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func rawDecisions(ds []Decision) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString("  " + d.Raw + "\n")
	}
	return b.String()
}
