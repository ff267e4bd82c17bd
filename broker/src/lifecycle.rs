//! The broker's life in the cluster, as Kafka's `BrokerLifecycleManager` runs it: the
//! broker registers itself with the active controller (its node id, a fresh incarnation
//! id, its advertised Kafka address) and then heartbeats every
//! `broker.heartbeat.interval.ms`. Its first heartbeat unfences it: from then on Metadata
//! lists it and it may lead partitions. A broker whose heartbeats stop is fenced by the
//! controller after `broker.session.timeout.ms`; when the controller answers that the
//! registration is gone or stale, the broker registers again.

use std::time::Duration;

use tokio::sync::watch;
use uuid::Uuid;

use crate::controller::{
    Controller, ControllerError, ControllerReply, ControllerRequest, RegisterBroker, Roles,
};

/// Kafka's `broker.heartbeat.interval.ms` default.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);

/// How soon a failed registration or heartbeat is tried again (the quorum may have no
/// leader yet, or be electing one).
const RETRY: Duration = Duration::from_millis(100);

/// How long a starting broker waits for a controller before saying it does.
const QUIET: Duration = Duration::from_secs(2);

/// Registers this broker and heartbeats until `shutdown` turns true. `unfenced` turns true
/// once the controller has unfenced this broker (and false while it is fenced).
/// `incarnation_id` is fresh per process start.
pub async fn run(
    controller: Controller,
    node_id: i32,
    incarnation_id: Uuid,
    (host, port): (String, u16),
    unfenced: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let registration = RegisterBroker {
        node_id,
        incarnation_id,
        host,
        port,
        rack: None,
        roles: Roles {
            broker: true,
            controller: controller.voters().contains_key(&(node_id as u64)),
        },
    };
    let mut broker_epoch: Option<i64> = None;
    let mut last_error = String::new();
    let started = std::time::Instant::now();
    loop {
        let outcome = match broker_epoch {
            None => controller
                .request(ControllerRequest::RegisterBroker(registration.clone()))
                .await
                .map(|reply| {
                    if let ControllerReply::BrokerEpoch(epoch) = reply {
                        tracing::info!(node_id, broker_epoch = epoch, "broker registered");
                        broker_epoch = Some(epoch);
                    }
                    // Heartbeat at once: the first one unfences.
                    Duration::ZERO
                }),
            Some(epoch) => controller
                .request(ControllerRequest::Heartbeat {
                    node_id,
                    broker_epoch: epoch,
                })
                .await
                .map(|reply| {
                    if let ControllerReply::Heartbeat(answer) = reply {
                        let was = *unfenced.borrow();
                        if was == answer.fenced {
                            if answer.fenced {
                                tracing::warn!(node_id, "broker fenced by the controller");
                            } else {
                                tracing::info!(node_id, "broker unfenced");
                            }
                        }
                        unfenced.send_replace(!answer.fenced);
                    }
                    HEARTBEAT_INTERVAL
                }),
        };
        let wait = match outcome {
            Ok(wait) => {
                last_error.clear();
                wait
            }
            Err(e) => {
                if matches!(
                    e,
                    ControllerError::BrokerIdNotRegistered(_)
                        | ControllerError::StaleBrokerEpoch { .. }
                ) {
                    broker_epoch = None;
                    unfenced.send_replace(false);
                }
                let text = e.to_string();
                let electing = matches!(e, ControllerError::NotController { .. });
                if electing && started.elapsed() < QUIET {
                    // A node alone meets this once while it elects itself.
                    tracing::debug!(node_id, "waiting for the controller quorum: {e}");
                } else if text != last_error {
                    // Once per kind of failure: while the quorum has no leader this repeats
                    // every retry.
                    if electing {
                        tracing::info!(node_id, "waiting for the controller quorum: {e}");
                    } else {
                        tracing::warn!(node_id, "broker registration or heartbeat: {e}");
                    }
                    last_error = text;
                }
                RETRY
            }
        };
        if wait.is_zero() {
            continue;
        }
        // A quorum still electing is waited out on its metrics, not a fixed pause, so that a
        // node alone starts serving as soon as it elected itself.
        let leader_known = controller.leader_id().is_some();
        let pause = async {
            if leader_known || wait != RETRY {
                tokio::time::sleep(wait).await
            } else {
                controller.wait_for_leader(wait).await
            }
        };
        tokio::select! {
            _ = pause => {}
            _ = crate::shutdown::stopped(&mut shutdown) => return,
        }
    }
}
