//! Output: a table for people (the columns a command chose), or `--json` for scripts (the SDK's values
//! whole, as the API names their fields).

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use serde::Serialize;

/// How results are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// A value a command lists: its table row under the command's headers.
pub trait Row: Serialize {
    fn headers() -> &'static [&'static str];
    fn row(&self) -> Vec<String>;
}

/// Writes `items` as a table (headers, one row each) or a JSON array.
pub fn list<T: Row>(format: Format, items: &[T]) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(items)?),
        Format::Table => {
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
            table.set_header(T::headers().to_vec());
            for item in items {
                table.add_row(item.row());
            }
            println!("{table}");
            if items.is_empty() {
                eprintln!("(none)");
            }
        }
    }
    Ok(())
}

/// Writes one value: as a one-row table, or a JSON object.
pub fn one<T: Row>(format: Format, item: &T) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            println!("{}", serde_json::to_string_pretty(item)?);
            Ok(())
        }
        Format::Table => list(format, std::slice::from_ref(item)),
    }
}

/// Writes any serialisable value: pretty JSON in both formats (for values with no table of their own).
pub fn value<T: Serialize>(item: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(item)?);
    Ok(())
}

/// Prints a live stream's items as they come, until it ends (Ctrl-C stops it): one JSON line each for
/// scripts, `line` for people; an error ends it.
pub async fn follow<T: Serialize>(
    format: Format,
    items: impl futures::Stream<Item = Result<T, cp_sdk::Error>>,
    line: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    use futures::StreamExt;
    let mut items = std::pin::pin!(items);
    while let Some(item) = items.next().await {
        let item = item?;
        match format {
            Format::Json => println!("{}", serde_json::to_string(&item)?),
            Format::Table => println!("{}", line(&item)),
        }
    }
    Ok(())
}

/// An optional value as a cell.
pub fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "—".to_owned(), ToString::to_string)
}

/// A time as a cell (UTC, to the second).
pub fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// An enum as the API writes it (`ACTIVE`).
pub fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}
