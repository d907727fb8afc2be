// Package query is the typed read API of databridge.
package query
