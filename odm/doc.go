// Package odm is databridge's small object-document mapper: typed writes.
package odm
