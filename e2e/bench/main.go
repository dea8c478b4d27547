// Command bench measures pullgate against direct pulls from a real
// docker-registry and against distribution's pull-through proxy (the
// peer), all on loopback, and prints one table of ratios measured in the
// same run (make bench; README "Performance").
//
// It starts, by itself: docker-registry as the upstream, docker-registry
// with proxy.remoteurl as the peer, the built pullgate (with a disk blob
// cache) restarted for every cold measurement, a counting reverse proxy in
// front of the upstream (exact upstream request counts), and an in-process
// upstream of 100,000 signed images (for the verdict-memory measurement).
// Images are pushed with the registry API and signed with the cosign v2
// CLI (key, --tlog-upload=false); blobs are fetched with the crane CLI,
// which verifies digests. Every process it starts is stopped by PID, and
// its scratch directory is removed unless -keep is given.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
)

func main() {
	var o options
	flag.StringVar(&o.pullgate, "pullgate", "bin/pullgate", "the pullgate binary")
	flag.StringVar(&o.tools, "tools", envOr("PULLGATE_TOOLS", filepath.Join(os.Getenv("HOME"), ".cache/pullgate/tools")), "where crane and cosign are installed (e2e/install-tools.sh)")
	flag.IntVar(&o.runs, "runs", 7, "runs per throughput and latency measurement (medians are reported)")
	flag.IntVar(&o.rollout, "rollout", 200, "concurrent pulls of one new image")
	flag.IntVar(&o.verdicts, "verdicts", 100_000, "verdicts cached for the memory measurement")
	flag.IntVar(&o.heads, "heads", 2000, "manifest HEADs per latency measurement")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory (logs, data)")
	flag.StringVar(&o.out, "out", "", "also write the table (Markdown) to this file")
	flag.StringVar(&o.only, "only", "", "run only these phases (comma-separated: throughput,head,verify,pulls,stream,verdicts)")
	cpuprofile := flag.String("cpuprofile", "", "write the benchmark program's own CPU profile here (to find what the harness costs)")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		pprof.StopCPUProfile() // os.Exit skips the deferred stop
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type options struct {
	pullgate, tools, out, only     string
	runs, rollout, verdicts, heads int
	keep                           bool
}

// bench is one run: its scratch directory, tools and daemons.
type bench struct {
	o           options
	dir         string
	pullgateBin string
	registryBin string
	crane       string
	cosign      string
	daemons     []*daemon

	upstream, peer *registry
	counter        *counter
	synth          *synthetic
	pg             *daemon
	pgPort         int
	pgStarts       int
	pgConfig       string
	cacheDir       string

	big, huge, signed, roll *image
	table                   table
}

func run(ctx context.Context, o options) (err error) {
	start := time.Now()
	b := &bench{o: o}
	if b.dir, err = os.MkdirTemp("", "pullgate-bench-"); err != nil {
		return err
	}
	defer func() {
		for _, d := range slices.Backward(b.daemons) {
			d.stop()
		}
		if b.counter != nil {
			_ = b.counter.srv.Close()
		}
		if b.synth != nil {
			_ = b.synth.srv.Close()
		}
		if o.keep || err != nil {
			fmt.Fprintln(os.Stderr, "bench: scratch directory kept:", b.dir)
		} else {
			_ = os.RemoveAll(b.dir)
		}
	}()
	if err := b.setup(ctx); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	phases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"throughput", b.throughput},
		{"head", b.headLatency},
		{"verify", b.coldVerify},
		{"pulls", b.concurrentPulls},
		{"stream", b.rssStreaming},
		{"verdicts", b.rssVerdicts},
	}
	for _, p := range phases {
		if o.only != "" && !slices.Contains(strings.Split(o.only, ","), p.name) {
			continue
		}
		t0 := time.Now()
		progress("%s…", p.name)
		if err := p.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		progress("%s done in %v", p.name, time.Since(t0).Round(100*time.Millisecond))
	}
	out := b.header(time.Since(start)) + b.table.markdown()
	fmt.Print(out)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(out), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// setup finds the tools, starts the upstream, the peer, the counting
// proxy and the synthetic upstream, pushes and signs the images.
func (b *bench) setup(ctx context.Context) error {
	t0 := time.Now()
	var err error
	if b.pullgateBin, err = filepath.Abs(b.o.pullgate); err != nil {
		return err
	}
	if b.registryBin, err = exec.LookPath("docker-registry"); err != nil {
		return fmt.Errorf("docker-registry not found (make tools): %w", err)
	}
	b.crane = filepath.Join(b.o.tools, "crane-v0.22.1", "crane")
	b.cosign = filepath.Join(b.o.tools, "cosign-v2.6.5", "cosign")
	for _, p := range []string{b.pullgateBin, b.crane, b.cosign} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s missing (make tools build): %w", p, err)
		}
	}
	for _, d := range []string{"logs", "home", "keys"} {
		if err := os.MkdirAll(filepath.Join(b.dir, d), 0o755); err != nil {
			return err
		}
	}
	if b.upstream, err = b.newRegistry("upstream", ""); err != nil {
		return err
	}
	if err := b.startRegistry(ctx, b.upstream); err != nil {
		return err
	}
	if b.peer, err = b.newRegistry("peer", b.upstream.url()); err != nil {
		return err
	}
	if b.counter, err = newCounter(b.upstream.url()); err != nil {
		return err
	}
	progress("generating %d signed synthetic images…", b.o.verdicts)
	if b.synth, err = newSynthetic(b.o.verdicts); err != nil {
		return err
	}

	// Images: a 200 MiB layer (throughput), a 1 GiB layer (memory), a
	// small image (latency, verification), and a new image for the
	// concurrent pulls (three blobs: config, 1 MiB and 16 MiB layers).
	p := &pusher{base: b.upstream.url(), client: newClient(4)}
	progress("pushing images…")
	if b.big, err = p.pushImage(ctx, "bench/big", "v1", 1, 200<<20); err != nil {
		return err
	}
	if b.huge, err = p.pushImage(ctx, "bench/huge", "v1", 2, 1<<30); err != nil {
		return err
	}
	if b.signed, err = p.pushImage(ctx, "bench/signed", "v1", 3, 4096); err != nil {
		return err
	}
	if b.roll, err = p.pushImage(ctx, "bench/rollout", "v1", 4, 1<<20, 16<<20); err != nil {
		return err
	}
	progress("signing with cosign…")
	if _, err := b.cosignRun(ctx, "generate-key-pair", "--output-key-prefix", filepath.Join(b.dir, "keys", "cosign")); err != nil {
		return err
	}
	if _, err := b.cosignRun(ctx, "trusted-root", "create", "--out", filepath.Join(b.dir, "keys", "empty-trusted-root.json")); err != nil {
		return err
	}
	for _, img := range []*image{b.big, b.huge, b.signed, b.roll} {
		ref := b.upstream.addr() + "/" + img.repo + "@" + img.digest.String()
		if _, err := b.cosignRun(ctx, "sign", "--key", filepath.Join(b.dir, "keys", "cosign.key"), "--tlog-upload=false", "-y", ref); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(b.dir, "keys", "many.pub"), b.synth.pubPEM, 0o644); err != nil {
		return err
	}
	if b.pgPort, err = freePort(); err != nil {
		return err
	}
	b.cacheDir = filepath.Join(b.dir, "pullgate-cache")
	b.pgConfig = filepath.Join(b.dir, "pullgate.yaml")
	cfg := fmt.Sprintf(`listen: 127.0.0.1:%d
upstreams:
  - registry: bench.local
    endpoint: %s
  - registry: counted.local
    endpoint: http://%s
  - registry: %s
    endpoint: http://%s
defaultRegistry: bench.local
policies:
  - name: bench
    images: ["bench.local/bench/**", "counted.local/bench/**"]
    signers:
      - name: bench-key
        key: {path: keys/cosign.pub}
  - name: many
    images: ["%s/**"]
    signers:
      - name: many-key
        key: {path: keys/many.pub}
cache:
  dir: %s
  maxBytes: 4Gi
`, b.pgPort, b.upstream.url(), b.counter.addr, syntheticRegistry, b.synth.addr, syntheticRegistry, b.cacheDir)
	if err := os.WriteFile(b.pgConfig, []byte(cfg), 0o644); err != nil {
		return err
	}
	progress("setup done in %v", time.Since(t0).Round(100*time.Millisecond))
	return nil
}

func (b *bench) toolEnv() []string {
	return []string{"HOME=" + filepath.Join(b.dir, "home"), "COSIGN_PASSWORD=", "TUF_ROOT=" + filepath.Join(b.dir, "home", "tuf"), "DOCKER_CONFIG=" + filepath.Join(b.dir, "home", "docker")}
}

func (b *bench) cosignRun(ctx context.Context, args ...string) (time.Duration, error) {
	return b.timed(ctx, b.cosign, args...)
}

// timed runs a tool to completion (output discarded) and returns its
// wall time: the whole process, as a user would see it.
func (b *bench) timed(ctx context.Context, bin string, args ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), b.toolEnv()...)
	cmd.Dir = b.dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return took, nil
}

// startPullgate (re)starts pullgate, with an empty blob cache when cold.
func (b *bench) startPullgate(ctx context.Context, cold bool) error {
	if b.pg != nil {
		b.pg.stop()
		b.pg = nil
	}
	if cold {
		if err := os.RemoveAll(b.cacheDir); err != nil {
			return err
		}
	}
	b.pgStarts++
	d, err := b.start(fmt.Sprintf("pullgate-%02d", b.pgStarts), b.pullgateBin, b.toolEnv(),
		"serve", "--config", b.pgConfig, "--log-format", "json", "--log-level", "info")
	if err != nil {
		return err
	}
	b.pg = d
	return d.waitReady(ctx, b.pgURL()+"/v2/")
}

func (b *bench) pgURL() string  { return fmt.Sprintf("http://127.0.0.1:%d", b.pgPort) }
func (b *bench) pgAddr() string { return fmt.Sprintf("127.0.0.1:%d", b.pgPort) }

// serveManifest GETs a manifest through pullgate (which verifies it and
// grants its blobs).
func (b *bench) serveManifest(ctx context.Context, c *http.Client, img *image, query string) error {
	_, err := get(ctx, c, b.pgURL()+"/v2/"+img.repo+"/manifests/"+img.tag+query, img.digest)
	return err
}

// waitCached waits until pullgate's disk cache holds dgst (the fill
// commits after the response is complete).
func (b *bench) waitCached(ctx context.Context, dgst digest.Digest) error {
	p := filepath.Join(b.cacheDir, "blobs", "sha256", dgst.Encoded())
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		if _, err := os.Stat(p); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("blob %s never reached the cache", dgst)
}

// craneBlob times `crane blob <addr>/<repo>@<layer> > /dev/null`.
func (b *bench) craneBlob(ctx context.Context, addr string, img *image) (time.Duration, error) {
	return b.timed(ctx, b.crane, "blob", addr+"/"+img.repo+"@"+img.layers[0].String())
}

// throughput: the 200 MiB layer direct, through the peer (cold: storage
// wiped and restarted before each run; warm) and through pullgate (cold:
// cache wiped and process restarted before each run; warm). Each run
// measures every path once, in turn, so that load from elsewhere on the
// machine hits them alike.
func (b *bench) throughput(ctx context.Context) error {
	size := b.big.sizes[0]
	c := newClient(1)
	defer c.CloseIdleConnections()
	// Warm the upstream's page cache first.
	if _, err := b.craneBlob(ctx, b.upstream.addr(), b.big); err != nil {
		return err
	}
	var direct, peerCold, peerWarm, pgCold, pgWarm []time.Duration
	blob := func(into *[]time.Duration, addr string) error {
		settle()
		d, err := b.craneBlob(ctx, addr, b.big)
		*into = append(*into, d)
		return err
	}
	for range b.o.runs {
		if err := blob(&direct, b.upstream.addr()); err != nil {
			return err
		}
		if err := b.peer.wipe(); err != nil {
			return err
		}
		if err := b.startRegistry(ctx, b.peer); err != nil {
			return err
		}
		if err := blob(&peerCold, b.peer.addr()); err != nil {
			return err
		}
		// Stopped (after it finished storing the blob) so that nothing
		// it still does runs into the next measurement.
		b.peer.proc.stop()
		if err := b.startPullgate(ctx, true); err != nil {
			return err
		}
		if err := b.serveManifest(ctx, c, b.big, ""); err != nil {
			return err
		}
		if err := blob(&pgCold, b.pgAddr()); err != nil {
			return err
		}
		b.pg.stop() // waits for the cache commit (sync and rename)
	}
	// Warm: both restarted on what they stored; one untimed pull each
	// (pullgate hashes a file found at start on its first use).
	if err := b.startRegistry(ctx, b.peer); err != nil {
		return err
	}
	if err := b.startPullgate(ctx, false); err != nil {
		return err
	}
	if err := b.serveManifest(ctx, c, b.big, ""); err != nil {
		return err
	}
	if err := b.waitCached(ctx, b.big.layers[0]); err != nil {
		return err
	}
	for _, addr := range []string{b.peer.addr(), b.pgAddr()} {
		if _, err := b.craneBlob(ctx, addr, b.big); err != nil {
			return err
		}
	}
	for range b.o.runs {
		for _, p := range []struct {
			into *[]time.Duration
			addr string
		}{{&direct, b.upstream.addr()}, {&peerWarm, b.peer.addr()}, {&pgWarm, b.pgAddr()}} {
			if err := blob(p.into, p.addr); err != nil {
				return err
			}
		}
	}
	b.peer.proc.stop()
	rate := func(ds []time.Duration) float64 { return float64(size) / median(ds).Seconds() / 1e6 }
	rd, rpc, rpw, rgc, rgw := rate(direct), rate(peerCold), rate(peerWarm), rate(pgCold), rate(pgWarm)
	tp := func(ds []time.Duration) string {
		return fmt.Sprintf("%.0f MB/s (median %s of %d)", rate(ds), ms(median(ds)), len(ds))
	}
	sec := fmt.Sprintf("Blob throughput, %d-byte layer, `crane blob`", size)
	b.table.add(sec, "direct (docker-registry)", tp(direct), "1.00× direct", "", nil)
	b.table.add(sec, "peer cold (distribution proxy)", tp(peerCold), ratio(rpc, rd)+" direct", "", nil)
	b.table.add(sec, "peer warm", tp(peerWarm), ratio(rpw, rd)+" direct", "", nil)
	b.table.add(sec, "pullgate cold", tp(pgCold), ratio(rgc, rd)+" direct", "≥ 0.85× direct", met(rgc/rd >= 0.85))
	b.table.add(sec, "pullgate cold vs peer cold", "", ratio(rgc, rpc)+" peer cold", "≥ 2× peer cold", met(rgc/rpc >= 2))
	b.table.add(sec, "pullgate warm", tp(pgWarm), ratio(rgw, rd)+" direct", "≥ 1.0× direct", met(rgw/rd >= 1.0))
	b.table.add(sec, "pullgate warm vs peer warm", "", ratio(rgw, rpw)+" peer warm", "≥ 1.25× peer warm", met(rgw/rpw >= 1.25))
	progress("throughput MB/s: direct %.0f, peer cold %.0f warm %.0f, pullgate cold %.0f warm %.0f", rd, rpc, rpw, rgc, rgw)
	return nil
}

// headLatency: sequential HEADs of a manifest by tag (containerd's
// request) on one keep-alive connection: direct, and through pullgate
// with the verdict cached.
func (b *bench) headLatency(ctx context.Context) error {
	measure := func(base, query string) ([]time.Duration, error) {
		c := newClient(1)
		defer c.CloseIdleConnections()
		u := base + "/v2/" + b.signed.repo + "/manifests/" + b.signed.tag + query
		var ds []time.Duration
		for i := range b.o.heads + 200 {
			req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Accept", containerdAccept)
			t0 := time.Now()
			resp, err := c.Do(req)
			if err != nil {
				return nil, err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			took := time.Since(t0)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != b.signed.digest.String() {
				return nil, fmt.Errorf("HEAD %s: %d %s", u, resp.StatusCode, resp.Header.Get("Docker-Content-Digest"))
			}
			if i >= 200 { // warm-up
				ds = append(ds, took)
			}
		}
		return ds, nil
	}
	if err := b.startPullgate(ctx, false); err != nil {
		return err
	}
	direct, err := measure(b.upstream.url(), "")
	if err != nil {
		return err
	}
	pg, err := measure(b.pgURL(), "")
	if err != nil {
		return err
	}
	d50, d99 := percentile(direct, 50), percentile(direct, 99)
	p50, p99 := percentile(pg, 50), percentile(pg, 99)
	sec := fmt.Sprintf("Warm manifest HEAD by tag, %d sequential requests, one connection", b.o.heads)
	b.table.add(sec, "direct p50 / p99", us(d50)+" / "+us(d99), "", "", nil)
	b.table.add(sec, "pullgate p50 / p99 (verdict cached)", us(p50)+" / "+us(p99), ratio(p50.Seconds(), d50.Seconds())+" / "+ratio(p99.Seconds(), d99.Seconds())+" direct", "p50 ≤ 1.3× direct", met(p50.Seconds() <= 1.3*d50.Seconds()))
	return nil
}

// coldVerify: time to a verified manifest through a freshly started
// pullgate (empty caches) vs the cosign verify process on the same image.
func (b *bench) coldVerify(ctx context.Context) error {
	ref := b.upstream.addr() + "/" + b.signed.repo + "@" + b.signed.digest.String()
	args := []string{"verify", "--key", filepath.Join(b.dir, "keys", "cosign.pub"), "--insecure-ignore-tlog",
		"--trusted-root", filepath.Join(b.dir, "keys", "empty-trusted-root.json"), ref}
	if _, err := b.cosignRun(ctx, args...); err != nil { // warm-up (page cache)
		return err
	}
	var pg, cs []time.Duration
	for range b.o.runs {
		d, err := b.cosignRun(ctx, args...)
		if err != nil {
			return err
		}
		cs = append(cs, d)
		if err := b.startPullgate(ctx, false); err != nil {
			return err
		}
		c := newClient(1)
		t0 := time.Now()
		if err := b.serveManifest(ctx, c, b.signed, ""); err != nil {
			return err
		}
		pg = append(pg, time.Since(t0))
		c.CloseIdleConnections()
	}
	mp, mc := median(pg), median(cs)
	sec := "Time to a verified manifest, cold (key-signed image, cosign v2 `.sig`)"
	b.table.add(sec, "`cosign verify --key` (whole process, hermetic)", ms(mc)+" median of "+fmt.Sprint(len(cs)), "", "", nil)
	b.table.add(sec, "pullgate GET by tag, fresh process", ms(mp)+" median of "+fmt.Sprint(len(pg)), ratio(mp.Seconds(), mc.Seconds())+" cosign", "≤ 0.2× cosign", met(mp.Seconds() <= 0.2*mc.Seconds()))
	return nil
}

// concurrentPulls: N clients pull one new image at once through a fresh
// pullgate whose upstream is the counting proxy.
func (b *bench) concurrentPulls(ctx context.Context) error {
	if err := b.startPullgate(ctx, true); err != nil {
		return err
	}
	b.counter.reset()
	n := b.o.rollout
	c := newClient(n)
	defer c.CloseIdleConnections()
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr sync.Once
	var perr error
	t0 := time.Now()
	for range n {
		wg.Go(func() {
			if err := pull(ctx, c, b.pgURL(), b.roll.repo, b.roll.tag, "?ns=counted.local"); err != nil {
				failed.Add(1)
				firstErr.Do(func() { perr = err })
			}
		})
	}
	wg.Wait()
	took := time.Since(t0)
	if perr != nil {
		return fmt.Errorf("%d of %d pulls failed, first: %w", failed.Load(), n, perr)
	}
	counts := b.counter.snapshot()
	repo := "/v2/" + b.roll.repo
	tagHeads := counts["HEAD "+repo+"/manifests/"+b.roll.tag]
	tagGets := counts["GET "+repo+"/manifests/"+b.roll.tag]
	manifestGets := counts["GET "+repo+"/manifests/"+b.roll.digest.String()] + tagGets
	blobMin, blobMax := 1<<30, 0
	accounted := manifestGets + tagHeads
	for _, d := range append([]digest.Digest{b.roll.config}, b.roll.layers...) {
		k := counts["GET "+repo+"/blobs/"+d.String()]
		blobMin, blobMax = min(blobMin, k), max(blobMax, k)
		accounted += k
	}
	total := 0
	for _, v := range counts {
		total += v
	}
	verifications, err := countLines(b.pg.log, `"msg":"decision"`)
	if err != nil {
		return err
	}
	var bytes int64
	for _, s := range b.roll.sizes {
		bytes += s
	}
	sec := fmt.Sprintf("%d concurrent pulls of one new image (HEAD tag, GET manifest, config + 2 layers, %.1f MB each), fresh pullgate", n, float64(bytes)/1e6)
	b.table.add(sec, "upstream GETs of the manifest (by tag or digest)", fmt.Sprint(manifestGets), "", "exactly 1", met(manifestGets == 1))
	b.table.add(sec, "upstream GETs per blob (min–max of 3)", fmt.Sprintf("%d–%d", blobMin, blobMax), "", "exactly 1", met(blobMin == 1 && blobMax == 1))
	b.table.add(sec, "verifications", fmt.Sprint(verifications), "", "exactly 1", met(verifications == 1))
	b.table.add(sec, "upstream HEADs of the tag", fmt.Sprint(tagHeads), "", "", nil)
	b.table.add(sec, "other upstream requests (signature discovery, ping)", fmt.Sprint(total-accounted), "", "", nil)
	b.table.add(sec, "wall time for all pulls", ms(took), fmt.Sprintf("%.0f MB/s aggregate", float64(bytes)*float64(n)/took.Seconds()/1e6), "", nil)
	return nil
}

// rssStreaming: pullgate's peak RSS while a 1 GiB blob streams through it
// cold (fetched, hashed, cached and served at once).
func (b *bench) rssStreaming(ctx context.Context) error {
	if err := b.startPullgate(ctx, true); err != nil {
		return err
	}
	if err := b.serveManifest(ctx, newClient(1), b.huge, ""); err != nil {
		return err
	}
	settle()
	took, err := b.craneBlob(ctx, b.pgAddr(), b.huge)
	if err != nil {
		return err
	}
	peak, _, err := b.pg.memory()
	if err != nil {
		return err
	}
	sec := "Peak RSS of pullgate (VmHWM)"
	b.table.add(sec, fmt.Sprintf("streaming a %d-byte blob, cold", b.huge.sizes[0]), mib(peak),
		fmt.Sprintf("%.0f MB/s", float64(b.huge.sizes[0])/took.Seconds()/1e6), "≤ 100 MiB", met(peak <= 100<<20))
	return nil
}

// rssVerdicts: pullgate's peak RSS after verifying (and caching the
// verdicts of) N signed images.
func (b *bench) rssVerdicts(ctx context.Context) error {
	if err := b.startPullgate(ctx, true); err != nil {
		return err
	}
	const workers = 32
	c := newClient(workers)
	defer c.CloseIdleConnections()
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var ferr error
	t0 := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(b.synth.digests) {
					return
				}
				d := b.synth.digests[i]
				if _, err := get(ctx, c, b.pgURL()+"/v2/"+syntheticRepo+"/manifests/"+d.String()+"?ns="+syntheticRegistry, d); err != nil {
					once.Do(func() { ferr = err })
					return
				}
				if i > 0 && i%20000 == 0 {
					progress("  %d verified", i)
				}
			}
		})
	}
	wg.Wait()
	if ferr != nil {
		return ferr
	}
	took := time.Since(t0)
	peak, cur, err := b.pg.memory()
	if err != nil {
		return err
	}
	cpu, err := b.pg.cpu()
	if err != nil {
		return err
	}
	verifications, err := countLines(b.pg.log, `"msg":"decision"`)
	if err != nil {
		return err
	}
	if verifications != len(b.synth.digests) {
		return fmt.Errorf("%d verifications for %d images", verifications, len(b.synth.digests))
	}
	// Every verdict is still cached: a second pass verifies nothing.
	for _, i := range []int{0, len(b.synth.digests) / 2, len(b.synth.digests) - 1} {
		d := b.synth.digests[i]
		if _, err := get(ctx, c, b.pgURL()+"/v2/"+syntheticRepo+"/manifests/"+d.String()+"?ns="+syntheticRegistry, d); err != nil {
			return err
		}
	}
	again, err := countLines(b.pg.log, `"msg":"decision"`)
	if err != nil {
		return err
	}
	if again != verifications {
		return fmt.Errorf("verdicts were evicted: %d verifications after re-requests of cached ones", again)
	}
	b.table.add("Peak RSS of pullgate (VmHWM)", fmt.Sprintf("after verifying %d signed images (%d verdicts cached)", verifications, verifications), mib(peak)+" (now "+mib(cur)+")",
		fmt.Sprintf("%.0f verifications/s; pullgate CPU %s per image", float64(verifications)/took.Seconds(), us(cpu/time.Duration(verifications))), "≤ 150 MiB", met(peak <= 150<<20))
	return nil
}

// settle writes back dirty pages (the caches the previous run filled)
// so that no run pays for the one before.
func settle() {
	syscall.Sync()
	time.Sleep(50 * time.Millisecond)
}

func countLines(path, substr string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strings.Count(string(b), substr), nil
}

// header describes the run.
func (b *bench) header(took time.Duration) string {
	version := func(bin string, args ...string) string {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			return "?"
		}
		for _, l := range strings.Split(string(out), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "  ") {
				return l
			}
		}
		return "?"
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("pullgate benchmark, %s: %d CPUs, kernel %s, %s; %s; pullgate %s; crane %s; cosign v2.6.5; %d runs per median; whole run %s\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.Version(),
		version(b.registryBin, "--version"), version(b.pullgateBin, "version"), version(b.crane, "version"), b.o.runs, took.Round(time.Second))
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}

func us(d time.Duration) string { return fmt.Sprintf("%d µs", d.Microseconds()) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func met(ok bool) *bool { return &ok }

// table is the printed result: rows grouped in sections.
type table struct {
	rows []row
}

type row struct {
	section, measure, value, ratio, target string
	ok                                     *bool
}

func (t *table) add(section, measure, value, ratio, target string, ok *bool) {
	t.rows = append(t.rows, row{section, measure, value, ratio, target, ok})
}

func (t *table) markdown() string {
	var sb strings.Builder
	sb.WriteString("| measure | value | ratio | target | met |\n|---|---|---|---|---|\n")
	section := ""
	for _, r := range t.rows {
		if r.section != section {
			section = r.section
			fmt.Fprintf(&sb, "| **%s** | | | | |\n", section)
		}
		mark := ""
		if r.ok != nil {
			mark = "✗"
			if *r.ok {
				mark = "✓"
			}
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", r.measure, r.value, r.ratio, r.target, mark)
	}
	missed := 0
	for _, r := range t.rows {
		if r.ok != nil && !*r.ok {
			missed++
		}
	}
	fmt.Fprintf(&sb, "\n%d targets, %d missed.\n", countTargets(t.rows), missed)
	return sb.String()
}

func countTargets(rows []row) int {
	n := 0
	for _, r := range rows {
		if r.ok != nil {
			n++
		}
	}
	return n
}
