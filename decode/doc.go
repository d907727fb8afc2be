// Package decode is databridge's compiled BSON→struct decoder.
package decode
