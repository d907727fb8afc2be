package odm

import (
	"context"

	"github.com/databridge-go/databridge/internal/opt"
)

// Hooks are small interfaces that model types implement to run code around
// writes; they are found by type assertion on *T. Each takes the write's
// context and aborts the write by returning an error (wrapped in a
// *HookError). Hooks run per document, also in InsertMany and BulkSave,
// before anything is sent; WithoutHooks skips them.
type (
	// BeforeSaveHook runs first in Save, Replace, BulkSave, FindOneAndReplace
	// and for BulkWrite's replace models.
	BeforeSaveHook interface {
		BeforeSave(ctx context.Context) error
	}
	// AfterSaveHook runs after a successful Save, Replace, BulkSave,
	// FindOneAndReplace, or BulkWrite replace model.
	AfterSaveHook interface {
		AfterSave(ctx context.Context) error
	}
	// BeforeInsertHook runs before a document is inserted (Insert,
	// InsertMany, and Save or BulkSave of a document without an _id).
	BeforeInsertHook interface {
		BeforeInsert(ctx context.Context) error
	}
	// AfterInsertHook runs after a successful insert.
	AfterInsertHook interface {
		AfterInsert(ctx context.Context) error
	}
	// BeforeDeleteHook runs before Delete.
	BeforeDeleteHook interface {
		BeforeDelete(ctx context.Context) error
	}
	// AfterDeleteHook runs after a successful Delete.
	AfterDeleteHook interface {
		AfterDelete(ctx context.Context) error
	}
)

// Validator is implemented by model types that check themselves before
// they are written. It runs after the Before hooks (which may fill in
// defaults) and before anything is sent; WithoutValidation skips it.
type Validator interface{ Validate() error }

// hook is one hook kind: its name (for HookError) and how it runs on a
// document, by asserting the document's interface where it runs.
type hook struct {
	name string
	run  func(ctx context.Context, doc any) error
}

var (
	hookBeforeSave = hook{"BeforeSave", func(ctx context.Context, doc any) error {
		if h, ok := doc.(BeforeSaveHook); ok {
			return h.BeforeSave(ctx)
		}
		return nil
	}}
	hookAfterSave = hook{"AfterSave", func(ctx context.Context, doc any) error {
		if h, ok := doc.(AfterSaveHook); ok {
			return h.AfterSave(ctx)
		}
		return nil
	}}
	hookBeforeInsert = hook{"BeforeInsert", func(ctx context.Context, doc any) error {
		if h, ok := doc.(BeforeInsertHook); ok {
			return h.BeforeInsert(ctx)
		}
		return nil
	}}
	hookAfterInsert = hook{"AfterInsert", func(ctx context.Context, doc any) error {
		if h, ok := doc.(AfterInsertHook); ok {
			return h.AfterInsert(ctx)
		}
		return nil
	}}
	hookBeforeDelete = hook{"BeforeDelete", func(ctx context.Context, doc any) error {
		if h, ok := doc.(BeforeDeleteHook); ok {
			return h.BeforeDelete(ctx)
		}
		return nil
	}}
	hookAfterDelete = hook{"AfterDelete", func(ctx context.Context, doc any) error {
		if h, ok := doc.(AfterDeleteHook); ok {
			return h.AfterDelete(ctx)
		}
		return nil
	}}
)

// The hooks of each write, in the order they run.
var (
	saveHooks        = []hook{hookBeforeSave}
	saveInsertHooks  = []hook{hookBeforeSave, hookBeforeInsert}
	insertHooks      = []hook{hookBeforeInsert}
	deleteHooks      = []hook{hookBeforeDelete}
	afterInsert      = []hook{hookAfterInsert}
	afterSave        = []hook{hookAfterSave}
	afterInsertSave  = []hook{hookAfterInsert, hookAfterSave}
	afterDeleteHooks = []hook{hookAfterDelete}
)

// before runs the Before hooks given, then validation.
func before(ctx context.Context, doc any, index int, cfg *opt.Config, hooks ...hook) error {
	if !cfg.SkipHooks {
		for _, h := range hooks {
			if err := h.run(ctx, doc); err != nil {
				return &HookError{Hook: h.name, Index: index, Err: err}
			}
		}
	}
	if !cfg.SkipValidation {
		if v, ok := doc.(Validator); ok {
			if err := v.Validate(); err != nil {
				return &HookError{Hook: "Validate", Index: index, Err: err}
			}
		}
	}
	return nil
}

// after runs the After hooks given.
func after(ctx context.Context, doc any, index int, cfg *opt.Config, hooks ...hook) error {
	if cfg.SkipHooks {
		return nil
	}
	for _, h := range hooks {
		if err := h.run(ctx, doc); err != nil {
			return &HookError{Hook: h.name, Index: index, Err: err}
		}
	}
	return nil
}
