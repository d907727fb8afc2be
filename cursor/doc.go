// Package cursor streams MongoDB query results into Go structs.
package cursor
