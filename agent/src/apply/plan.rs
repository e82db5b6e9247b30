//! A plan as `plan` prints it: each step's state (done, changes, runs,
//! cannot) and the summary line, `terraform plan`-like.

/// What one step would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemState {
    /// Already as the step wants it.
    Done,
    /// It would change these (one line each).
    Changes(Vec<String>),
    /// It runs every time (an `exec` without `unless`): no state tells.
    Runs,
    /// A notification (webhook): sent, changes nothing here.
    Notifies,
    /// `wait-for`: waits for gates, changes nothing.
    Waits,
    /// It cannot run as written (the server would refuse it, or the state
    /// cannot be read).
    Cannot(String),
}

#[derive(Debug, Clone)]
pub struct PlanItem {
    /// 1-based.
    pub step: usize,
    pub action: &'static str,
    pub summary: String,
    pub state: ItemState,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub phase: String,
    pub items: Vec<PlanItem>,
}

impl Plan {
    /// Some step would change something (or runs every time).
    pub fn pending(&self) -> bool {
        self.items
            .iter()
            .any(|i| matches!(i.state, ItemState::Changes(_) | ItemState::Runs))
    }

    /// The first step that cannot run, and why.
    pub fn cannot(&self) -> Option<(&PlanItem, &str)> {
        self.items.iter().find_map(|i| match &i.state {
            ItemState::Cannot(why) => Some((i, why.as_str())),
            _ => None,
        })
    }

    /// The plan as text, `terraform plan`-like: one block per step.
    pub fn render(&self) -> String {
        let mut out = format!("plan for {} ({} steps):\n", self.phase, self.items.len());
        for i in &self.items {
            let (mark, note) = match &i.state {
                ItemState::Done => ("=", "already done".to_owned()),
                ItemState::Changes(_) => ("~", "changes".to_owned()),
                ItemState::Runs => (
                    "!",
                    "runs (no `unless` check says whether it is done)".to_owned(),
                ),
                ItemState::Notifies => ("·", "notifies".to_owned()),
                ItemState::Waits => ("…", "waits".to_owned()),
                ItemState::Cannot(why) => ("x", format!("CANNOT: {why}")),
            };
            out.push_str(&format!(
                "{mark} {}. {} — {}: {note}\n",
                i.step, i.action, i.summary
            ));
            if let ItemState::Changes(lines) = &i.state {
                for l in lines {
                    out.push_str(&format!("      {l}\n"));
                }
            }
        }
        let changing = self
            .items
            .iter()
            .filter(|i| matches!(i.state, ItemState::Changes(_) | ItemState::Runs))
            .count();
        out.push_str(&match self.cannot() {
            Some((i, _)) => format!("cannot apply {}: step {} cannot run\n", self.phase, i.step),
            None if changing == 0 => format!("{}: nothing to change\n", self.phase),
            None => format!(
                "{}: {changing} of {} steps would change something\n",
                self.phase,
                self.items.len()
            ),
        });
        out
    }
}
