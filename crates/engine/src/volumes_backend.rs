//! The engine's volume routes: the [`VolumeStore`] behind
//! [`VolumeBackend`], its errors as dockerd's status codes, and volume
//! events (`create`, `destroy`, `prune`) as dockerd sends them.

use std::collections::BTreeMap;

use hafen_api::ApiError;
use hafen_api::filters::Filters;
use hafen_api::models::{Actor, Event, Volume, VolumeCreate, VolumeList, VolumePruneReport};
use hafen_api::server::VolumeBackend;

use crate::Engine;
use crate::volumes::{LOCAL_DRIVER, VolumeError};

/// A volume error as the API reports it.
pub fn api_error(e: VolumeError) -> ApiError {
    let status = match &e {
        VolumeError::NotFound(_) | VolumeError::NoDriver { .. } => 404,
        VolumeError::InUse { .. } | VolumeError::Conflict { .. } => 409,
        VolumeError::Invalid { .. } | VolumeError::InvalidFilter(_) => 400,
        VolumeError::Mount(_) | VolumeError::Io { .. } => 500,
    };
    ApiError::new(status, e.to_string())
}

impl Engine {
    /// Sends a volume event (dockerd fills no legacy fields for them).
    fn volume_event(&self, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        self.events().publish(Event {
            kind: "volume".into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes,
            },
            scope: "local".into(),
            ..Event::default()
        });
    }

    fn driver_attribute() -> BTreeMap<String, String> {
        BTreeMap::from([("driver".to_string(), LOCAL_DRIVER.to_string())])
    }
}

impl VolumeBackend for Engine {
    fn volume_list(&self, filters: &Filters) -> Result<VolumeList, ApiError> {
        Ok(VolumeList {
            volumes: self.volumes().list(filters).map_err(api_error)?,
            warnings: Vec::new(),
        })
    }

    fn volume_create(&self, request: &VolumeCreate) -> Result<Volume, ApiError> {
        let existed = !request.name.is_empty() && self.volumes().get(&request.name).is_ok();
        let v = self.volumes().create(request).map_err(api_error)?;
        if !existed {
            self.volume_event("create", &v.name, Engine::driver_attribute());
        }
        Ok(v)
    }

    fn volume_inspect(&self, name: &str) -> Result<Volume, ApiError> {
        self.volumes().get(name).map_err(api_error)
    }

    fn volume_delete(&self, name: &str, force: bool) -> Result<(), ApiError> {
        let existed = self.volumes().get(name).is_ok();
        self.volumes().remove(name, force).map_err(api_error)?;
        if existed {
            self.volume_event("destroy", name, Engine::driver_attribute());
        }
        Ok(())
    }

    fn volume_prune(&self, filters: &Filters) -> Result<VolumePruneReport, ApiError> {
        let report = self.volumes().prune(filters).map_err(api_error)?;
        for name in &report.deleted {
            self.volume_event("destroy", name, Engine::driver_attribute());
        }
        self.volume_event(
            "prune",
            "",
            BTreeMap::from([("reclaimed".to_string(), report.reclaimed.to_string())]),
        );
        Ok(VolumePruneReport {
            volumes_deleted: Some(report.deleted),
            space_reclaimed: report.reclaimed,
        })
    }

    fn volume_usage(&self) -> Result<Vec<Volume>, ApiError> {
        Ok(self.volumes().usage())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_dockerd_s() {
        let cases = [
            (VolumeError::NotFound("v".into()), 404),
            (
                VolumeError::InUse {
                    name: "v".into(),
                    users: vec!["c".into()],
                },
                409,
            ),
            (VolumeError::Conflict { name: "v".into() }, 409),
            (
                VolumeError::Invalid {
                    name: "v".into(),
                    reason: "r".into(),
                },
                400,
            ),
            (VolumeError::InvalidFilter("f".into()), 400),
            (
                VolumeError::NoDriver {
                    name: "v".into(),
                    driver: "d".into(),
                },
                404,
            ),
            (VolumeError::Mount("m".into()), 500),
        ];
        for (e, status) in cases {
            let text = e.to_string();
            let a = api_error(e);
            assert_eq!((a.status, a.message), (status, text));
        }
    }
}
