//! Checks of [`DuplicateStore`]: the near-duplicates of an image read back nearest
//! first, IDs on both sides of 2^63, rows of several writers (shards) kept side by side,
//! upserts idempotent, images and versions isolated.

use imgfeat_core::ImageId;
use imgfeat_core::message::Neighbour;
use imgfeat_core::ports::DuplicateStore;

use super::fixtures::Gen;
use super::{Violation, ensure, same};

fn n(image_id: ImageId, distance: u32) -> Neighbour {
    Neighbour { image_id, distance }
}

pub async fn near_duplicates_round_trip<S: DuplicateStore + ?Sized>(
    store: &S,
) -> Result<(), Violation> {
    let mut g = Gen::new();
    let v = g.version("dup")?;
    let image = g.high_id();
    let (a, b, c, d) = (g.high_id(), g.low_id(), g.high_id(), g.low_id());
    ensure!(
        store.near_duplicates(image, &v).await?.is_empty(),
        "a fresh image has near-duplicates"
    );
    // Two shards write their parts; one writes its part twice (a redelivered event).
    store
        .put_near_duplicates(image, &v, &[n(a, 9), n(b, 2)])
        .await?;
    store
        .put_near_duplicates(image, &v, &[n(c, 2), n(d, u32::from(u8::MAX))])
        .await?;
    store
        .put_near_duplicates(image, &v, &[n(a, 9), n(b, 2)])
        .await?;
    store.put_near_duplicates(image, &v, &[]).await?;
    let mut want = vec![n(a, 9), n(b, 2), n(c, 2), n(d, 255)];
    want.sort_by_key(|x| (x.distance, x.image_id));
    same(
        &store.near_duplicates(image, &v).await?,
        &want,
        "near-duplicates, nearest first in u64 order",
    )?;

    let other = g.version("dup-other")?;
    ensure!(
        store.near_duplicates(image, &other).await?.is_empty(),
        "near-duplicates leaked into another version"
    );
    ensure!(
        store.near_duplicates(a, &v).await?.is_empty(),
        "near-duplicates leaked onto a neighbour"
    );
    // The latest distance wins.
    store.put_near_duplicates(image, &v, &[n(a, 1)]).await?;
    let got = store.near_duplicates(image, &v).await?;
    same(&got.first(), &Some(&n(a, 1)), "the nearest after an update")?;
    same(&got.len(), &4, "neighbours after an update")?;
    Ok(())
}
