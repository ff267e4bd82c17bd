//! Partition assignors, run by the group leader: given every member's subscription (and, for
//! cooperative-sticky, the partitions it owns now), decide who consumes which partition.
//!
//! `range` is the Java default: per topic, members sorted by id each take a consecutive run,
//! the first `partitions % members` one extra. `cooperative-sticky` balances partitions over
//! all members while keeping each where it is when balance allows; a partition that must move
//! is left out of this round's assignment (its owner revokes it and rejoins) and handed to its
//! new owner in the next round, so no partition is ever consumed by two members at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::kafka::consumer::TopicPartition;

/// What a member sent in JoinGroup.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemberSubscription {
    pub(crate) topics: Vec<String>,
    pub(crate) owned: Vec<TopicPartition>,
}

/// Member id → partitions assigned.
pub(crate) type Assignment = BTreeMap<String, Vec<TopicPartition>>;

/// The `range` assignor.
pub(crate) fn range(
    members: &BTreeMap<String, MemberSubscription>,
    partitions: &HashMap<String, i32>,
) -> Assignment {
    let mut out: Assignment = members.keys().map(|m| (m.clone(), Vec::new())).collect();
    let topics: BTreeSet<&String> = members.values().flat_map(|m| m.topics.iter()).collect();
    for topic in topics {
        let Some(&count) = partitions.get(topic) else {
            continue;
        };
        let subscribers: Vec<&String> = members
            .iter()
            .filter(|(_, s)| s.topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        let n = subscribers.len() as i32;
        let (per, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, member) in subscribers.into_iter().enumerate() {
            let take = per + i32::from((i as i32) < extra);
            if let Some(list) = out.get_mut(member) {
                list.extend((next..next + take).map(|p| TopicPartition::new(topic, p)));
            }
            next += take;
        }
    }
    out
}

/// The `cooperative-sticky` assignor.
pub(crate) fn cooperative_sticky(
    members: &BTreeMap<String, MemberSubscription>,
    partitions: &HashMap<String, i32>,
) -> Assignment {
    let mut all: Vec<TopicPartition> = Vec::new();
    let topics: BTreeSet<&String> = members.values().flat_map(|m| m.topics.iter()).collect();
    for topic in topics {
        if let Some(&count) = partitions.get(topic) {
            all.extend((0..count).map(|p| TopicPartition::new(topic, p)));
        }
    }
    let mut target: Assignment = members.keys().map(|m| (m.clone(), Vec::new())).collect();
    let mut owner_now: HashMap<&TopicPartition, &String> = HashMap::new();
    for (member, sub) in members {
        for tp in &sub.owned {
            owner_now.entry(tp).or_insert(member);
        }
    }
    let n = members.len().max(1);
    let quota_floor = all.len() / n;
    let with_extra = all.len() % n;
    let mut extra_left = with_extra;
    let mut unassigned = Vec::new();
    // Keep owned partitions up to each member's quota.
    for tp in &all {
        let keeper = owner_now.get(tp).copied().filter(|m| {
            members[*m].topics.contains(&tp.topic) && {
                let held = target[*m].len();
                held < quota_floor || (held == quota_floor && extra_left > 0)
            }
        });
        match keeper {
            Some(m) => {
                let list = target.entry(m.clone()).or_default();
                if list.len() == quota_floor {
                    extra_left -= 1;
                }
                list.push(tp.clone());
            }
            None => unassigned.push(tp.clone()),
        }
    }
    // Hand the rest to the least loaded subscribers.
    for tp in unassigned {
        let candidate = target
            .iter()
            .filter(|(m, _)| members[*m].topics.contains(&tp.topic))
            .min_by_key(|(m, list)| (list.len(), (*m).clone()))
            .map(|(m, _)| m.clone());
        if let Some(m) = candidate
            && let Some(list) = target.get_mut(&m)
        {
            list.push(tp);
        }
    }
    // Cooperative: a partition still owned by someone else is withheld this round.
    for (member, list) in target.iter_mut() {
        list.retain(|tp| owner_now.get(tp).is_none_or(|owner| *owner == member));
        list.sort();
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(topics: &[&str], owned: &[(&str, i32)]) -> MemberSubscription {
        MemberSubscription {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned: owned
                .iter()
                .map(|(t, p)| TopicPartition::new(*t, *p))
                .collect(),
        }
    }

    #[test]
    fn range_gives_first_members_the_extra_partitions() {
        let members: BTreeMap<String, MemberSubscription> = [
            ("a".to_string(), sub(&["t"], &[])),
            ("b".to_string(), sub(&["t"], &[])),
        ]
        .into();
        let out = range(&members, &HashMap::from([("t".to_string(), 3)]));
        assert_eq!(
            out["a"],
            vec![TopicPartition::new("t", 0), TopicPartition::new("t", 1)]
        );
        assert_eq!(out["b"], vec![TopicPartition::new("t", 2)]);
    }

    #[test]
    fn cooperative_sticky_moves_partitions_in_two_rounds_without_overlap() {
        let partitions = HashMap::from([("t".to_string(), 4)]);
        let owned_all = [("t", 0), ("t", 1), ("t", 2), ("t", 3)];
        // Round 1: b joins while a owns everything: b gets nothing yet, a keeps two.
        let round1: BTreeMap<String, MemberSubscription> = [
            ("a".to_string(), sub(&["t"], &owned_all)),
            ("b".to_string(), sub(&["t"], &[])),
        ]
        .into();
        let out = cooperative_sticky(&round1, &partitions);
        assert_eq!(out["a"].len(), 2);
        assert!(out["b"].is_empty());
        // Round 2: a has revoked what it lost; b now gets it.
        let kept: Vec<(&str, i32)> = out["a"].iter().map(|tp| ("t", tp.partition)).collect();
        let round2: BTreeMap<String, MemberSubscription> = [
            ("a".to_string(), sub(&["t"], &kept)),
            ("b".to_string(), sub(&["t"], &[])),
        ]
        .into();
        let out2 = cooperative_sticky(&round2, &partitions);
        assert_eq!(out2["a"], out["a"], "a keeps its partitions");
        assert_eq!(out2["b"].len(), 2);
        assert!(out2["b"].iter().all(|tp| !out2["a"].contains(tp)));
    }
}
