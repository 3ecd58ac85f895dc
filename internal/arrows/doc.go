// Package arrows holds only a test: that every import between sealpost's packages is one the
// Packages table of DESIGN.md allows, read from go list -deps.
package arrows
