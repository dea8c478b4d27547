//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestConformance runs the OCI distribution-spec conformance suite's
// read-only pull workflow (TESTBED §7) against pullgate fronting a
// signed image: ping, manifest and blob HEAD/GET by tag and digest,
// missing manifests, malformed digests, the tag list (sorted, n/last)
// and the referrers API. Every check that runs must pass.
//
// The suite's binary exits 2 in read-only mode after printing its report
// (it panics writing results.yaml), so the report is parsed instead.
func TestConformance(t *testing.T) {
	bed := newTestbed(t)
	reg := bed.startRegistry(t)
	release := bed.cosign2.generateKeyPair(t, "release")
	pg := bed.startPullgate(t, fmt.Sprintf(pullConfig, reg.Addr), map[string][]byte{
		"keys/release.pub": release.PubPEM,
	})

	// A cosign v3 signature gives the image a referrer (a bundle, found
	// through the referrers tag); a few more tags exercise n/last.
	const repo = "e2e/conformance"
	dgst := bed.pushImage(t, reg.Ref(repo+":v1"))
	bed.cosign3.sign(t, release, reg.Ref(repo+"@"+dgst))
	for _, tag := range []string{"v2", "latest", "1.0"} {
		bed.mustCrane(t, "tag", reg.Ref(repo+":v1"), tag)
	}
	blobs := manifestBlobs(t, bed, reg.Ref(repo+"@"+dgst))
	// pullgate serves a blob only once a manifest that references it was
	// served (blobs follow verified manifests); the suite may HEAD a
	// blob before any manifest, so pull the image through pullgate first.
	bed.mustCrane(t, "pull", "--format", "oci", pg.Ref(repo+":v1"), filepath.Join(t.TempDir(), "oci"))

	env := []string{
		"OCI_REGISTRY=" + pg.Addr,
		"OCI_TLS=disabled",
		"OCI_REPO1=" + repo,
		"OCI_REPO2=" + repo,
		"OCI_API_PULL=true",
		"OCI_API_PUSH=false",
		"OCI_API_BLOBS_DELETE=false",
		"OCI_API_MANIFESTS_DELETE=false",
		"OCI_API_TAGS_DELETE=false",
		"OCI_API_TAGS_LIST=true",
		"OCI_API_REFERRER=true",
		"OCI_RO_DATA_TAGS=v1 v2 latest 1.0",
		"OCI_RO_DATA_MANIFESTS=" + dgst,
		"OCI_RO_DATA_BLOBS=" + strings.Join(blobs, " "),
		"OCI_RO_DATA_REFERRERS=" + dgst,
		"OCI_RESULTS_DIR=" + filepath.Join(t.TempDir(), "results"),
		"OCI_LOG=warn",
	}
	r := bed.runFull(t, env, bed.tools.conformance)
	report := parseConformance(r.Stdout)
	t.Logf("conformance report:\n%s", conformanceSummary(r.Stdout))
	if r.Code != 0 && r.Code != 2 {
		t.Errorf("conformance exited %d (0, or 2 for the known panic after the report, expected):\n%s", r.Code, tail(r.Output, 40))
	}
	if report.result == "" || len(report.tests) == 0 {
		t.Fatalf("no report in the conformance output:\n%s", tail(r.Output, 60))
	}
	if report.result != "Pass" {
		t.Errorf("OCI Conformance Result: %s, want Pass", report.result)
	}
	for _, ct := range report.tests {
		if ct.status != "Pass" && ct.status != "Disabled" {
			t.Errorf("conformance test %q: %s", ct.name, ct.status)
		}
	}
	if report.counts["Pass"] == 0 || report.counts["FAIL"] != 0 || report.counts["Error"] != 0 || report.counts["Skip"] != 0 {
		t.Errorf("conformance counts %v, want passes and no failures, errors or skips", report.counts)
	}
	for _, want := range []string{
		"Ping", "Tag listing", "Referrers", "Blob get", "Blob head",
		"Manifest get by digest", "Manifest get by tag", "Manifest head by digest", "Manifest head by tag",
	} {
		if report.apis[want] != "Pass" {
			t.Errorf("API conformance %q = %q, want Pass", want, report.apis[want])
		}
	}
	for _, want := range []string{"Read Only Inputs", "Invalid Manifest Digest"} {
		if report.data[want] != "Pass" {
			t.Errorf("data conformance %q = %q, want Pass", want, report.data[want])
		}
	}
	// The tag list is sorted and pages with n and last (Link header), the
	// part of the spec the suite's read-only run touches least.
	all := tagPages(t, pg, repo, 0)
	if !slices.IsSorted(all) || len(all) < 5 {
		t.Errorf("tags/list = %q, want at least 5 tags, sorted", all)
	}
	if paged := tagPages(t, pg, repo, 2); !slices.Equal(paged, all) {
		t.Errorf("tags/list in pages of 2 = %q, want %q", paged, all)
	}

	// The checks it ran went through pullgate.
	for _, want := range []string{"/v2/" + repo + "/tags/list", "/v2/" + repo + "/referrers/" + dgst, "/v2/" + repo + "/manifests/sha256:baddigeststring"} {
		found := false
		for _, req := range pg.Requests() {
			if req.Path == want {
				found = true
				t.Logf("pullgate: %s", req)
			}
		}
		if !found {
			t.Errorf("the conformance suite never requested %s", want)
		}
	}
}

// tagPages lists repo's tags through pullgate, n at a time (all at once
// for n = 0), following the Link header from page to page.
func tagPages(t testing.TB, pg *Pullgate, repo string, n int) []string {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	next := "/v2/" + repo + "/tags/list"
	if n > 0 {
		next += "?n=" + strconv.Itoa(n)
	}
	var tags []string
	for pages := 0; next != ""; pages++ {
		if pages > 20 {
			t.Fatalf("tags/list: more than 20 pages")
		}
		cur := next
		resp, err := client.Get(pg.URL() + cur)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Tags []string `json:"tags"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("GET %s: %s, %v", cur, resp.Status, err)
		}
		if n > 0 && len(body.Tags) > n {
			t.Errorf("GET %s returned %d tags, more than n=%d", cur, len(body.Tags), n)
		}
		tags = append(tags, body.Tags...)
		next = ""
		if link := resp.Header.Get("Link"); link != "" {
			m := regexp.MustCompile(`^<([^>]+)>; rel="next"$`).FindStringSubmatch(link)
			if m == nil {
				t.Fatalf("GET %s: bad Link header %q", cur, link)
			}
			next = m[1]
		}
	}
	t.Logf("tags/list (n=%d): %q", n, tags)
	return tags
}

// conformanceReport is what parseConformance reads from the text report.
type conformanceReport struct {
	result string            // OCI Conformance Result: <result>
	tests  []confTest        // the test tree, in order
	counts map[string]int    // Pass, FAIL, Error, Skip, Disabled
	apis   map[string]string // API conformance section
	data   map[string]string // Data conformance section
}

// confTest is one line of the conformance test tree.
type confTest struct{ name, status string }

// confLine is "<indent><name>: <status>" (the tree) or
// "  <name>....: <value>" (the tables).
var confLine = regexp.MustCompile(`^( *)(\S.*?)\.*: +(\S+)$`)

// parseConformance parses the report the conformance binary prints:
// the test tree (indented by two spaces per level), the result and its
// counts, and the API and data conformance tables.
func parseConformance(out string) conformanceReport {
	r := conformanceReport{counts: map[string]int{}, apis: map[string]string{}, data: map[string]string{}}
	section := ""
	for _, l := range strings.Split(out, "\n") {
		switch {
		case l == "Test results":
			section = "tests"
			continue
		case strings.HasPrefix(l, "OCI Conformance Result: "):
			r.result = strings.TrimPrefix(l, "OCI Conformance Result: ")
			section = "counts"
			continue
		case l == "API conformance:":
			section = "apis"
			continue
		case l == "Data conformance:":
			section = "data"
			continue
		case l == "", strings.HasPrefix(l, "Configuration:"), strings.HasPrefix(l, "Errors:"):
			section = ""
			continue
		}
		m := confLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		switch section {
		case "tests":
			// Names are full paths ("OCI Conformance Test/read-only/pull");
			// one name appears once per input it was run with.
			r.tests = append(r.tests, confTest{name: m[2], status: m[3]})
		case "counts":
			var n int
			fmt.Sscan(m[3], &n)
			r.counts[m[2]] = n
		case "apis":
			r.apis[m[2]] = m[3]
		case "data":
			r.data[m[2]] = m[3]
		}
	}
	return r
}

// conformanceSummary is the report without its configuration section.
func conformanceSummary(out string) string {
	i, j := strings.Index(out, "Test results"), strings.Index(out, "Configuration:")
	k := strings.Index(out, "OCI Conformance Result:")
	if i < 0 || j < i || k < j {
		return tail(out, 60)
	}
	return out[i:j] + out[k:]
}
