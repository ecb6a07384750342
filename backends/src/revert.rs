//! Rollback for multi-step operations (Incus's `revert`).
//!
//! Register an undo after each step that changed something; call `success()` at the end
//! to disarm. If the operation returns early with an error, `fail(err)` runs the undos in
//! reverse order and, if one of them fails too, returns an error that says both.

use crate::error::{Error, Result};

type Undo<'a> = Box<dyn FnOnce() -> Result<()> + 'a>;

#[derive(Default)]
pub struct Revert<'a> {
    undos: Vec<(&'static str, Undo<'a>)>,
}

impl<'a> Revert<'a> {
    pub fn new() -> Self {
        Revert { undos: Vec::new() }
    }

    /// Registers how to undo the step just done.
    pub fn add(&mut self, what: &'static str, undo: impl FnOnce() -> Result<()> + 'a) {
        self.undos.push((what, Box::new(undo)));
    }

    /// The operation succeeded: forget the undos.
    pub fn success(mut self) {
        self.undos.clear();
    }

    /// Runs the undos, newest first, and returns `err` (wrapped if an undo failed too).
    pub fn fail(mut self, err: Error) -> Error {
        let mut rollback_err = None;
        while let Some((what, undo)) = self.undos.pop() {
            if let Err(e) = undo() {
                tracing::error!(step = what, error = %e, "rollback step failed");
                rollback_err.get_or_insert(e);
            }
        }
        match rollback_err {
            None => err,
            Some(rb) => Error::RollbackFailed {
                error: Box::new(err),
                rollback: Box::new(rb),
            },
        }
    }

    /// Runs `f`; on error, rolls back and returns the error.
    pub fn run<T>(mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        match f(&mut self) {
            Ok(v) => {
                self.success();
                Ok(v)
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}

impl Drop for Revert<'_> {
    fn drop(&mut self) {
        // A Revert dropped with undos still armed means a `?` escaped without `fail`:
        // run them anyway so nothing half-made is left behind.
        while let Some((what, undo)) = self.undos.pop() {
            if let Err(e) = undo() {
                tracing::error!(step = what, error = %e, "rollback step failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn boom(msg: &str) -> Error {
        Error::Invalid {
            op: "test",
            object: "x".into(),
            reason: msg.into(),
        }
    }

    #[test]
    fn undoes_in_reverse_order_on_failure() {
        let log = RefCell::new(Vec::new());
        let r: Result<()> = Revert::new().run(|rv| {
            log.borrow_mut().push("step1");
            rv.add("1", || {
                log.borrow_mut().push("undo1");
                Ok(())
            });
            log.borrow_mut().push("step2");
            rv.add("2", || {
                log.borrow_mut().push("undo2");
                Ok(())
            });
            Err(boom("step3 failed"))
        });
        assert!(r.is_err());
        assert_eq!(*log.borrow(), ["step1", "step2", "undo2", "undo1"]);
    }

    #[test]
    fn success_disarms() {
        let log = RefCell::new(Vec::new());
        Revert::new()
            .run(|rv| {
                rv.add("1", || {
                    log.borrow_mut().push("undo");
                    Ok(())
                });
                Ok(())
            })
            .unwrap();
        assert!(log.borrow().is_empty());
    }

    #[test]
    fn failed_undo_is_reported_with_the_original_error() {
        let e = Revert::new()
            .run(|rv| -> Result<()> {
                rv.add("1", || Err(boom("undo broke")));
                Err(boom("op broke"))
            })
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("op broke") && msg.contains("undo broke"),
            "{msg}"
        );
    }
}
