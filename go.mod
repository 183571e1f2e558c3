module github.com/hotslab/hotslab

go 1.26.0

require (
	github.com/cockroachdb/datadriven v1.0.3
	github.com/hanwen/go-fuse/v2 v2.12.1
	github.com/petermattis/goid v0.0.0-20260820044319-269ab09b5261
	golang.org/x/sys v0.49.0
)

require github.com/pmezard/go-difflib v1.0.0 // indirect
