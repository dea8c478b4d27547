// Command pullgate-demo shows pullgate's main job with nothing to set up:
// it starts an in-process registry seeded with images signed the way
// cosign v2 and cosign v3 sign them and one unsigned image, runs the real
// pullgate binary in front of it, pulls each image through pullgate, and
// shows which pulls were allowed and why the unsigned one was denied.
//
// It exits non-zero when an outcome is not the expected one, so it doubles
// as a smoke test. Run it with `make demo`.
package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pullgate/pullgate/verifier/verifiertest"
)

//go:embed demo.yaml.tmpl
var configTemplate string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bin := flag.String("pullgate", "bin/pullgate", "path of the pullgate binary")
	flag.Parse()
	if err := run(ctx, *bin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		stop()
		os.Exit(1)
	}
}

type image struct {
	tag, how string
	want     string // "allowed" or "denied"
}

func run(ctx context.Context, bin string, out io.Writer) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "pullgate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// 1. The upstream: go-containerregistry's registry, in process.
	upLn, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	upSrv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = upSrv.Serve(upLn) }()
	defer upSrv.Close()
	upstream := upLn.Addr().String()

	// 2. A signing key, and three images: signed as cosign v2 does
	// (sha256-<hex>.sig), signed as cosign v3 does (a Sigstore bundle found
	// through the referrers tag), and unsigned.
	key, err := verifiertest.GenerateKey("ecdsa-p256")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "release.pub"), key.PublicPEM, 0o600); err != nil {
		return err
	}
	repo, err := name.NewRepository(upstream + "/demo/hello")
	if err != nil {
		return err
	}
	images := []image{
		{"signed-v2", "signed by release-key, cosign v2 layout (sha256-<hex>.sig tag)", "allowed"},
		{"signed-v3", "signed by release-key, cosign v3 layout (Sigstore bundle via referrers)", "allowed"},
		{"unsigned", "not signed at all", "denied"},
	}
	fmt.Fprintf(out, "pullgate demo\n\n  upstream registry (in process): http://%s\n", upstream)
	for i, im := range images {
		img, err := random.Image(2048, 2)
		if err != nil {
			return err
		}
		ref := repo.Tag(im.tag)
		if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		dgst, err := img.Digest()
		if err != nil {
			return err
		}
		switch i {
		case 0:
			err = verifiertest.SignLegacy(ctx, repo, dgst, key, remote.WithContext(ctx))
		case 1:
			var desc *v1.Descriptor
			if desc, err = remote.Head(repo.Digest(dgst.String()), remote.WithContext(ctx)); err == nil {
				err = verifiertest.SignBundle(ctx, repo, *desc, key, remote.WithContext(ctx))
			}
		}
		if err != nil {
			return fmt.Errorf("sign %s: %w", ref, err)
		}
		fmt.Fprintf(out, "  demo.local/demo/hello:%-10s %s  %s\n", im.tag, short(dgst), im.how)
	}

	// 3. pullgate, the real binary, with a generated config.
	listen, err := freeAddr()
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "pullgate.yaml")
	if err := writeConfig(cfgPath, listen, "http://"+upstream); err != nil {
		return err
	}
	var logs bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "serve", "--config", cfgPath, "--log-format", "json")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start pullgate (build it with make build): %w", err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	if err := waitReady(ctx, "http://"+listen+"/v2/"); err != nil {
		return fmt.Errorf("pullgate did not start: %w\n%s", err, logs.String())
	}
	fmt.Fprintf(out, "\n  pullgate serve --config %s  (listening on %s)\n\n", cfgPath, listen)

	// 4. Pull every image through pullgate, as crane pull would.
	var failures []string
	for _, im := range images {
		ref := fmt.Sprintf("%s/demo/hello:%s", listen, im.tag)
		got, detail := pull(ctx, ref)
		mark := "ok"
		if got != im.want {
			mark = "UNEXPECTED"
			failures = append(failures, fmt.Sprintf("%s was %s, want %s", ref, got, im.want))
		}
		fmt.Fprintf(out, "  pull %-38s %-8s %s   [%s]\n", ref, strings.ToUpper(got), detail, mark)
	}

	// 5. What pullgate verify says, with evidence, for the v2-signed image.
	fmt.Fprintf(out, "\n  pullgate verify --config pullgate.yaml demo.local/demo/hello:signed-v2\n")
	vout, _ := exec.CommandContext(ctx, bin, "verify", "--config", cfgPath, "demo.local/demo/hello:signed-v2").CombinedOutput()
	fmt.Fprint(out, indent(string(vout), "    "))

	// 6. pullgate's decision log: one line per verification.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	fmt.Fprintf(out, "\n  pullgate decision log:\n")
	sc := bufio.NewScanner(bytes.NewReader(logs.Bytes()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"msg":"decision"`) {
			fmt.Fprintf(out, "    %s\n", sc.Text())
		}
	}
	if len(failures) > 0 {
		return errors.New(strings.Join(failures, "; "))
	}
	fmt.Fprintf(out, "\n  signed images were served; the unsigned one was refused with its reason.\n")
	return nil
}

// pull fetches the manifest and every blob of ref, as crane pull does.
func pull(ctx context.Context, ref string) (outcome, detail string) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "error", err.Error()
	}
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		return denyOrError(err)
	}
	layers, err := img.Layers()
	if err != nil {
		return denyOrError(err)
	}
	var n int64
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return denyOrError(err)
		}
		m, err := io.Copy(io.Discard, rc)
		_ = rc.Close()
		if err != nil {
			return denyOrError(err)
		}
		n += m
	}
	dgst, _ := img.Digest()
	return "allowed", fmt.Sprintf("%s, %d layers, %d bytes verified and pulled", short(dgst), len(layers), n)
}

// denyOrError classifies a pull error and keeps the part a user reads:
// ggcr prints "GET <url>: DENIED: <message>; <detail>".
func denyOrError(err error) (string, string) {
	msg := err.Error()
	_, reason, ok := strings.Cut(msg, "DENIED: ")
	if !ok {
		return "error", msg
	}
	reason, _, _ = strings.Cut(reason, "; map[")
	return "denied", "denied: " + reason
}

func short(h v1.Hash) string { return h.Algorithm + ":" + h.Hex[:12] }

func writeConfig(path, listen, upstream string) error {
	t, err := template.New("config").Parse(configTemplate)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, map[string]string{"Listen": listen, "Upstream": upstream}); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o600)
}

func freeAddr() (string, error) {
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(prefix + line + "\n")
	}
	return b.String()
}
