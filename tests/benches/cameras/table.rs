//! A compact text table: a heading, aligned columns, notes under it.

/// Rows of cells under column names.
#[derive(Debug, Clone, Default)]
pub struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    pub fn new(head: &[&str]) -> Self {
        Self {
            head: head.iter().map(|h| h.to_string()).collect(),
            ..Self::default()
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn note(&mut self, text: String) {
        self.notes.push(text);
    }

    /// Prints `title`, the table (first column left-aligned, the others right-aligned) and the
    /// notes.
    pub fn print(&self, title: &str) {
        println!("\n## {title}");
        for line in self.lines() {
            println!("{line}");
        }
        for n in &self.notes {
            println!("  {n}");
        }
    }

    fn lines(&self) -> Vec<String> {
        let all: Vec<&Vec<String>> = std::iter::once(&self.head).chain(&self.rows).collect();
        let widths: Vec<usize> = (0..self.head.len())
            .map(|i| {
                all.iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        all.iter()
            .map(|r| {
                r.iter()
                    .zip(&widths)
                    .enumerate()
                    .map(|(i, (c, w))| {
                        if i == 0 {
                            format!("{c:<w$}")
                        } else {
                            format!("{c:>w$}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("  ")
            })
            .collect()
    }
}
