package verifier

import "testing"

// Test helpers shared with the external test package verifier_test.
const (
	FixturesDir  = fixtures
	FixtureImage = fixtureImage
)

// ReadFixture reads a shared fixture file, failing the test when it is
// missing.
func ReadFixture(t testing.TB, rel string) []byte {
	t.Helper()
	return readFixture(t, rel)
}
