package address_test

import (
	"fmt"

	"github.com/sealpost/sealpost/address"
)

func ExampleKey() {
	n, _ := address.Normalize(" Alice@Example.COM ")
	k, _ := address.Key(" Alice@Example.COM ")
	fmt.Println(n, k, address.Same("alice@example.com", "ALICE@example.com"), address.Domain(n))
	// Output: Alice@example.com alice@example.com true example.com
}
