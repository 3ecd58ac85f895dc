package tsa

import (
	"testing"

	"github.com/sealpost/sealpost/internal/fuzzbound"
)

// TestMain bounds fuzz minimisation (see fuzzbound): FuzzDecrypt, FuzzVerify and FuzzClientReply
// otherwise spend a short run minimising.
func TestMain(m *testing.M) { fuzzbound.Main(m) }
