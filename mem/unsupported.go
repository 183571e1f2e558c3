//go:build !linux

// Refuses to build mem anywhere but Linux. Every other file of the package
// (tests included) is built on Linux only, so elsewhere the package is just
// doc.go and this file, and the build fails with the one error below
// instead of a page of undefined names.

package mem

// The type error is the message: a string constant cannot be an int, and
// the compiler prints the constant.
var _ int = "hotslab requires Linux: mem maps blocks with mmap/madvise/memfd"
