package proxy

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	testUser     = "robot"
	testPassword = "s3cr3t-pa55-W0rd"
)

// TestUpstreamBearer: anonymous bearer tokens are fetched once per
// repository and reused for manifests, blobs and signature material.
func TestUpstreamBearer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	a := e.push(t, "signed/app", "v1")
	e.signLegacy(t, a, e.key)
	b := e.push(t, "signed/other", "v1")
	e.signBundle(t, b, e.key)
	e.up.requireAuth("bearer", "", "")
	for range 3 {
		for _, ref := range []string{"signed/app:v1", "signed/other:v1"} {
			if _, err := e.pull(t, testRegistry+"/"+ref); err != nil {
				t.Fatalf("pull %s: %v", ref, err)
			}
		}
	}
	want := map[string]int{"repository:signed/app:pull": 1, "repository:signed/other:pull": 1}
	if diff := cmp.Diff(want, e.up.tokenGrants()); diff != "" {
		t.Errorf("token grants per scope (-want +got):\n%s", diff)
	}
}

// TestUpstreamCredentials: configured credentials reach the upstream, in
// every supported form, and never appear in logs or responses.
func TestUpstreamCredentials(t *testing.T) {
	t.Parallel()
	basicAuth := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))
	tests := []struct {
		name  string
		mode  string // upstream challenge
		auth  string
		files map[string]string
	}{
		{
			name:  "password file bearer",
			mode:  "bearer",
			auth:  `{username: robot, passwordFile: "{{.Dir}}/pw"}`,
			files: map[string]string{"pw": testPassword + "\n"},
		},
		{
			name:  "password file basic",
			mode:  "basic",
			auth:  `{username: robot, passwordFile: "{{.Dir}}/pw"}`,
			files: map[string]string{"pw": testPassword},
		},
		{
			name:  "docker config by registry name",
			mode:  "bearer",
			auth:  `{dockerConfig: "{{.Dir}}/config.json"}`,
			files: map[string]string{"config.json": `{"auths":{"reg.test":{"auth":"` + basicAuth + `"}}}`},
		},
		{
			name:  "docker config by endpoint host",
			mode:  "basic",
			auth:  `{dockerConfig: "{{.Dir}}/config.json"}`,
			files: map[string]string{"config.json": `{"auths":{"other.example":{"auth":"eDp5"},"ENDPOINT":{"username":"robot","password":"` + testPassword + `"}}}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := newFakeUpstream(t, false)
			files := map[string]string{}
			for k, v := range tt.files {
				files[k] = strings.ReplaceAll(v, "ENDPOINT", up.host)
			}
			e := newEnvWith(t, up, envConfig{auth: tt.auth, files: files})
			f := e.push(t, "signed/app", "v1")
			e.signLegacy(t, f, e.key)
			e.up.requireAuth(tt.mode, testUser, testPassword)

			if _, err := e.pull(t, testRegistry+"/signed/app:v1"); err != nil {
				t.Fatalf("pull: %v", err)
			}
			var bodies []string
			for _, p := range []string{
				manifestPath("signed/app", "v1"),
				manifestPath("signed/app", "missing"),
				manifestPath("nothere/app", "v1"),
				"/v2/signed/app/tags/list?ns=reg.test",
				"/v2/signed/app/referrers/" + f.digest.String() + "?ns=reg.test",
			} {
				bodies = append(bodies, string(e.get(t, p).body))
			}
			if tt.mode == "bearer" {
				if g := e.up.tokenGrants()["repository:signed/app:pull"]; g != 1 {
					t.Errorf("token grants = %d, want 1", g)
				}
			}
			for _, s := range []string{testPassword, basicAuth} {
				if strings.Contains(e.logs.String(), s) {
					t.Errorf("the logs contain the credentials")
				}
				for _, b := range bodies {
					if strings.Contains(b, s) {
						t.Errorf("a response contains the credentials: %s", b)
					}
				}
			}
		})
	}
}

// TestUpstreamBadCredentials: credentials the upstream refuses give a
// clear NAME_UNKNOWN that names the cause, without the secret.
func TestUpstreamBadCredentials(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"bearer", "basic"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			const wrong = "wr0ng-pa55-W0rd"
			e := newEnv(t, envConfig{
				auth:  `{username: robot, passwordFile: "{{.Dir}}/pw"}`,
				files: map[string]string{"pw": wrong},
			})
			f := e.push(t, "signed/app", "v1")
			e.signLegacy(t, f, e.key)
			e.up.requireAuth(mode, testUser, testPassword)
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				r := e.do(t, method, manifestPath("signed/app", "v1"))
				wantStatus(t, r, http.StatusNotFound)
				if method == http.MethodHead {
					continue
				}
				oe := wantError(t, r, http.StatusNotFound, "NAME_UNKNOWN")
				if !strings.Contains(oe.Message, "credentials") || !strings.Contains(oe.Message, "401") {
					t.Errorf("message %q does not point at the credentials", oe.Message)
				}
				for _, s := range []string{wrong, testPassword} {
					if strings.Contains(string(r.body), s) || strings.Contains(e.logs.String(), s) {
						t.Errorf("a password leaked into the response or the logs")
					}
				}
			}
			if r := e.do(t, http.MethodGet, manifestPath("signed/app", "v1")); r.header.Get("WWW-Authenticate") != "" {
				t.Errorf("pullgate challenged its client: %v", r.header)
			}
		})
	}
}

// TestSchemePin: an https upstream is never contacted over http, even on
// a loopback address where ggcr falls back to http.
func TestSchemePin(t *testing.T) {
	t.Parallel()
	up := newFakeUpstream(t, false) // plain http
	e := newEnvWith(t, up, envConfig{endpoint: "https://" + up.host})
	r := e.get(t, manifestPath("signed/app", "v1"))
	if r.status < 500 {
		t.Fatalf("status %d, want 5xx: %s", r.status, r.body)
	}
	if n := up.total(); n != 0 {
		t.Errorf("the https upstream got %d plain-http requests", n)
	}
	if diff := cmp.Diff([]string{"https://" + up.host}, keys(e.hosts.hosts())); diff != "" {
		t.Errorf("schemes and hosts tried (-want +got):\n%s", diff)
	}
}

// TestUpstreamOpenNoHandshake: an upstream without configured
// credentials that never asks for any gets no ping and no token request,
// only the requests themselves (one round trip each, as containerd does);
// once it answers 401, pullgate authenticates.
func TestUpstreamOpenNoHandshake(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	f := e.push(t, "signed/app", "v1")
	e.signLegacy(t, f, e.key)
	g := e.push(t, "signed/other", "v1")
	e.signLegacy(t, g, e.key)
	e.up.resetCounts()
	if _, err := e.pull(t, testRegistry+"/signed/app:v1"); err != nil {
		t.Fatalf("pull: %v", err)
	}
	if n := e.up.count(http.MethodGet, "/v2/"); n != 0 {
		t.Errorf("pings of an open upstream = %d, want 0", n)
	}
	if grants := e.up.tokenGrants(); len(grants) != 0 {
		t.Errorf("token grants from an open upstream = %v, want none", grants)
	}
	e.up.requireAuth("bearer", "", "")
	if _, err := e.pull(t, testRegistry+"/signed/other:v1"); err != nil {
		t.Fatalf("pull after the upstream asked for auth: %v", err)
	}
	if grants := e.up.tokenGrants(); grants["repository:signed/other:pull"] != 1 {
		t.Errorf("token grants after the upstream asked for auth = %v, want one for signed/other", grants)
	}
}
