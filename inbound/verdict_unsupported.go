package inbound

// StatusUnsupported: signed, but a signature uses an algorithm or key sealpost cannot check (an
// unknown signature OID, Ed448, DSA, RSASSA-PSS with a mask generation other than MGF1 over the
// same hash), and no check sealpost could make failed. Whether the signature is valid is unknown:
// not a pass, and not the verdict of a forged signature. Authentication-Results says
// smime=neutral; the policy treats it like unsigned mail.
const StatusUnsupported = "unsupported"

// FailUnsupported names, in Verdict.Failures and Details, the signature that could not be checked.
// Alone it makes StatusUnsupported; beside a real failure the status is StatusFailed.
const FailUnsupported = "unsupported-algorithm"

// authResultUnsupported is the RFC 8601 result for StatusUnsupported.
const authResultUnsupported = "neutral"

// failedStatus is the status of a signed message with failures: StatusUnsupported when the only
// failure is a signature that could not be checked, else StatusFailed.
func failedStatus(failures []string) string {
	for _, f := range failures {
		if f != FailUnsupported {
			return StatusFailed
		}
	}
	return StatusUnsupported
}
