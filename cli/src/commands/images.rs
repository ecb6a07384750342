//! `image import|build|list|show|delete|alias`.

use anyhow::{anyhow, Result};
use serde::Serialize;

use super::Ctx;
use crate::cli::{AliasCommand, Format, ImageCommand};
use crate::images::{self, build, metadata_of, short};
use crate::names::ImageAlias;
use crate::output;
use crate::pools::Pool;
use crate::state::ImageRecord;

#[derive(Serialize)]
struct ImageView {
    fingerprint: String,
    aliases: Vec<String>,
    description: String,
    architecture: Option<String>,
    /// When the image was made (metadata.yaml `creation_date`), else imported.
    created_at: jiff::Timestamp,
    imported_at: jiff::Timestamp,
    size: u64,
    format: String,
    compression: String,
    properties: std::collections::BTreeMap<String, String>,
    pools: Vec<String>,
}

fn view(ctx: &Ctx, r: &ImageRecord) -> Result<ImageView> {
    let md = metadata_of(r);
    let created_at = md
        .creation_date
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or(r.imported_at);
    Ok(ImageView {
        fingerprint: r.fingerprint.clone(),
        aliases: r.aliases.clone(),
        description: md.description().to_string(),
        architecture: md.architecture.clone(),
        created_at,
        imported_at: r.imported_at,
        size: r.size,
        format: r.format.clone(),
        compression: r.compression.clone(),
        properties: md.properties.clone(),
        pools: ctx
            .store
            .image_volumes(&r.fingerprint)?
            .into_iter()
            .map(|v| v.pool)
            .collect(),
    })
}

fn aliases(list: &[String]) -> Result<Vec<ImageAlias>> {
    Ok(list
        .iter()
        .map(|a| a.parse())
        .collect::<Result<Vec<ImageAlias>, _>>()?)
}

fn import_and_report(
    ctx: &mut Ctx,
    file: &std::path::Path,
    aliases: &[ImageAlias],
    pool: Option<&str>,
) -> Result<()> {
    let progress = ctx.progress();
    let result = images::prepare(&ctx.store, file, progress.as_ref()).and_then(|prepared| {
        let pool = Pool::open(&ctx.store, pool)?;
        let outcome = images::import(&mut ctx.store, prepared, aliases, &pool, progress.as_ref())?;
        Ok((outcome, pool.name().to_string()))
    });
    progress.finish();
    let (outcome, pool) = result?;
    let v = view(ctx, &outcome.record)?;
    match ctx.format {
        Format::Json => output::json(&v),
        Format::Table => println!(
            "{} image {} ({}) in pool {}",
            if outcome.created {
                "imported"
            } else {
                "already had"
            },
            v.fingerprint,
            if v.aliases.is_empty() {
                "no alias".to_string()
            } else {
                v.aliases.join(", ")
            },
            pool
        ),
    }
    Ok(())
}

pub fn run(ctx: &mut Ctx, cmd: ImageCommand) -> Result<()> {
    match cmd {
        ImageCommand::Import {
            file,
            aliases: a,
            pool,
        } => import_and_report(ctx, &file, &aliases(&a)?, pool.as_deref()),
        ImageCommand::Build {
            target,
            aliases: a,
            pool,
        } => {
            let a = aliases(&a)?;
            let t: build::Target = target
                .parse()
                .map_err(|e| anyhow!("image build {target}: {e}"))?;
            let work =
                ctx.store
                    .dir()
                    .join("build")
                    .join(format!("{}-{}", t.suite, std::process::id()));
            let progress = ctx.progress();
            let built = build::build(&t, &work, progress.as_ref());
            progress.finish();
            let result = built
                .map_err(anyhow::Error::from)
                .and_then(|file| import_and_report(ctx, &file, &a, pool.as_deref()));
            if let Err(e) = std::fs::remove_dir_all(&work) {
                tracing::warn!(dir = %work.display(), error = %e, "could not remove the build directory");
            }
            result
        }
        ImageCommand::List => {
            let all = ctx.store.images()?;
            let views = all
                .iter()
                .map(|r| view(ctx, r))
                .collect::<Result<Vec<_>>>()?;
            match ctx.format {
                Format::Json => output::json(&views),
                Format::Table => {
                    let rows: Vec<Vec<String>> = views
                        .iter()
                        .map(|v| {
                            vec![
                                v.aliases.join(","),
                                short(&v.fingerprint).to_string(),
                                v.description.clone(),
                                cairn_backends::Bytes(v.size).to_string(),
                                output::time(v.created_at),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        output::table(
                            &["ALIASES", "FINGERPRINT", "DESCRIPTION", "SIZE", "CREATED"],
                            &rows
                        )
                    );
                }
            }
            Ok(())
        }
        ImageCommand::Show { image } => {
            let r = images::resolve(&ctx.store, &image)?;
            let v = view(ctx, &r)?;
            match ctx.format {
                Format::Json => output::json(&v),
                Format::Table => {
                    let mut f = vec![
                        ("fingerprint", v.fingerprint.clone()),
                        ("aliases", v.aliases.join(", ")),
                        ("description", v.description.clone()),
                        ("architecture", v.architecture.clone().unwrap_or_default()),
                        ("created", output::time(v.created_at)),
                        ("imported", output::time(v.imported_at)),
                        ("size", cairn_backends::Bytes(v.size).to_string()),
                        ("format", format!("{} ({})", v.format, v.compression)),
                        ("pools", v.pools.join(", ")),
                    ];
                    f.extend(
                        v.properties
                            .iter()
                            .map(|(k, val)| (k.as_str(), val.clone())),
                    );
                    print!("{}", output::fields(&f));
                }
            }
            Ok(())
        }
        ImageCommand::Delete { image } => {
            let r = images::delete(&ctx.store, &image)?;
            println!("deleted image {}", r.fingerprint);
            Ok(())
        }
        ImageCommand::Alias(AliasCommand::Add { alias, image }) => {
            let alias: ImageAlias = alias.parse()?;
            let r = images::add_alias(&ctx.store, &alias, &image)?;
            println!("alias {alias} points to image {}", short(&r.fingerprint));
            Ok(())
        }
        ImageCommand::Alias(AliasCommand::Remove { alias }) => {
            let alias: ImageAlias = alias.parse()?;
            images::remove_alias(&ctx.store, &alias)?;
            println!("removed alias {alias}");
            Ok(())
        }
    }
}
