package outbound

import "testing"

// TestClassifyRuleAddressWithoutCase: a rule's sender address matches however either is spelt.
func TestClassifyRuleAddressWithoutCase(t *testing.T) {
	c := overDefaults(Config{Rules: []Rule{{Sender: "OTP@Bank.example", Class: ClassOTP}, {Sender: "@Support.Bank.example", Class: ClassSupport}}})
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for sender, want := range map[string]string{
		"otp@bank.example":          ClassOTP,
		"OTP@BANK.EXAMPLE":          ClassOTP,
		"Otp@Bank.Example":          ClassOTP,
		"otp2@bank.example":         ClassUnclassified,
		"desk@support.bank.example": ClassSupport,
		"otp@support.bank.example":  ClassSupport,
	} {
		if got := c.classify(sender); got != want {
			t.Errorf("classify(%s) = %s; want %s", sender, got, want)
		}
	}
}
