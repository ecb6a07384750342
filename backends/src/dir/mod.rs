//! PLACEHOLDER (development only): replaced by the dir driver implementation.
use crate::backend::{Backend, PoolSpec};
use crate::error::{Error, Result};
use crate::names::{SnapshotName, VolumeName};
use crate::types::*;
use std::io::{Read, Write};
use std::path::PathBuf;
pub struct DirBackend {
    spec: PoolSpec,
}
impl DirBackend {
    pub fn new(spec: PoolSpec) -> Self {
        DirBackend { spec }
    }
}
fn ns<T>() -> Result<T> {
    Err(Error::NotSupported {
        driver: "dir",
        op: "placeholder",
    })
}
impl Backend for DirBackend {
    fn info(&self) -> DriverInfo {
        DriverInfo {
            name: "dir",
            capabilities: Capabilities {
                cow_clone: false,
                constant_time_snapshot: false,
                native_send: false,
                incremental_send: false,
                restore_any_snapshot: false,
                block_based: false,
                immutable_snapshots: false,
            },
        }
    }
    fn spec(&self) -> &PoolSpec {
        &self.spec
    }
    fn create_pool(&self) -> Result<CreateAction<()>> {
        ns()
    }
    fn mount_pool(&self) -> Result<()> {
        ns()
    }
    fn unmount_pool(&self) -> Result<()> {
        ns()
    }
    fn delete_pool(&self) -> Result<DeleteAction> {
        ns()
    }
    fn pool_usage(&self) -> Result<Usage> {
        ns()
    }
    fn create_volume(&self, _: &VolumeName) -> Result<CreateAction<()>> {
        ns()
    }
    fn clone_volume(&self, _: CloneSource<'_>, _: &VolumeName) -> Result<()> {
        ns()
    }
    fn delete_volume(&self, _: &VolumeName) -> Result<DeleteAction> {
        ns()
    }
    fn rename_volume(&self, _: &VolumeName, _: &VolumeName) -> Result<()> {
        ns()
    }
    fn mount_volume(&self, _: &VolumeName) -> Result<PathBuf> {
        ns()
    }
    fn unmount_volume(&self, _: &VolumeName) -> Result<()> {
        ns()
    }
    fn volume_usage(&self, _: &VolumeName) -> Result<Usage> {
        ns()
    }
    fn list_volumes(&self) -> Result<Vec<VolumeInfo>> {
        ns()
    }
    fn create_snapshot(&self, _: &VolumeName, _: &SnapshotName) -> Result<SnapshotInfo> {
        ns()
    }
    fn list_snapshots(&self, _: &VolumeName) -> Result<Vec<SnapshotInfo>> {
        ns()
    }
    fn delete_snapshot(&self, _: &VolumeName, _: &SnapshotName) -> Result<DeleteAction> {
        ns()
    }
    fn rename_snapshot(&self, _: &VolumeName, _: &SnapshotName, _: &SnapshotName) -> Result<()> {
        ns()
    }
    fn restore_snapshot(&self, _: &VolumeName, _: &SnapshotName) -> Result<()> {
        ns()
    }
    fn mount_snapshot(&self, _: &VolumeName, _: &SnapshotName) -> Result<PathBuf> {
        ns()
    }
    fn unmount_snapshot(&self, _: &VolumeName, _: &SnapshotName) -> Result<()> {
        ns()
    }
    fn send(
        &self,
        _: &VolumeName,
        _: &SnapshotName,
        _: Option<&SnapshotName>,
        _: &mut dyn Write,
    ) -> Result<SendStats> {
        ns()
    }
    fn receive(&self, _: &VolumeName, _: &SnapshotName, _: &mut dyn Read) -> Result<SnapshotInfo> {
        ns()
    }
}
