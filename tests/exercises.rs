//! Every exercise of the lessons, run three ways in both languages: as the notebook commits
//! it (the checker explains what is missing: no ✓, no panic), with its answer (✓), and with
//! typical wrong answers (each gets its specific words). The exercises' cells come from the
//! lessons' source (`scripts/notebooks.py build` writes tests/notebook_modules/*-exercises.rs).

use understanding_buffers::lesson::exercises::{self, Mark, Verdict};
use understanding_buffers::prelude::*;

mod lesson1 {
    use super::*;
    include!("notebook_modules/01-understanding-buffers-exercises.rs");
}

mod lesson2 {
    use super::*;
    include!("notebook_modules/02-positional-encoding-buffers-exercises.rs");
}

type Run = fn() -> std::result::Result<Verdict, Box<dyn std::error::Error>>;

fn verdict(run: Run) -> Verdict {
    run().unwrap_or_else(|err| panic!("the exercise's cell itself failed: {err}"))
}

/// What a learner must see from an unsolved or wrong answer, in both languages.
fn assert_explains(v: &Verdict, says: &str) {
    assert!(!v.passed(), "{}", v.text_in(Language::English));
    let en = v.text_in(Language::English);
    let zh = v.text_in(Language::Chinese);
    assert!(en.contains("✗ not yet") && !en.contains("✓ solved"), "{en}");
    assert!(zh.contains("✗ 还没完成"), "{zh}");
    assert!(en.contains(says), "expected {says:?} in:\n{en}");
    let marks: Vec<Mark> = v
        .lines_in(Language::English)
        .iter()
        .map(|(m, _)| *m)
        .collect();
    assert!(marks.contains(&Mark::Wrong), "{en}");
    // The Chinese verdict says the same things, in Chinese.
    let chinese = v.lines_in(Language::Chinese);
    assert_eq!(chinese.len(), marks.len());
    for (_, text) in chinese {
        assert!(
            text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{text}"
        );
    }
}

fn assert_solved(v: &Verdict) {
    let en = v.text_in(Language::English);
    assert!(v.passed(), "{en}");
    assert!(en.contains("✓ solved"), "{en}");
    assert!(v.text_in(Language::Chinese).contains("✓ 完成"));
}

macro_rules! exercise {
    ($test:ident, $module:path, committed says $committed:expr, wrong [$($wrong:ident => $says:ident),+]) => {
        #[test]
        fn $test() {
            use $module as e;
            assert_explains(&verdict(e::committed), $committed);
            assert_solved(&verdict(e::solution));
            $(assert_explains(&verdict(e::$wrong), e::$says);)+
        }
    };
}

exercise!(a_an_edit_that_survives_a_round_trip, lesson1::exercise_a,
    committed says "is still a plain field", wrong [wrong_1 => WRONG_1, wrong_2 => WRONG_2]);
exercise!(b_the_keys_of_a_state_dict, lesson1::exercise_b,
    committed says "your list is empty", wrong [wrong_1 => WRONG_1, wrong_2 => WRONG_2]);
exercise!(c_what_a_cast_changes, lesson1::exercise_c,
    committed says "your list is empty", wrong [wrong_1 => WRONG_1, wrong_2 => WRONG_2]);
exercise!(d_pytorchs_pe_into_position_embeddings, lesson2::exercise_d,
    committed says "is `pe`, your state dict's is `position_embeddings`", wrong [wrong_1 => WRONG_1, wrong_2 => WRONG_2]);
exercise!(e_the_table_from_the_checkpoint, lesson2::exercise_e,
    committed says "`pe` is an empty buffer (None)", wrong [wrong_1 => WRONG_1, wrong_2 => WRONG_2]);

#[test]
fn a_checker_survives_a_constructor_that_fails() {
    #[derive(Module)]
    struct Broken {
        scale: Buffer,
    }
    let v = exercises::keeps_its_edit(
        || -> Result<Broken> { Err(Error::Input("no".into())) },
        "scale",
    );
    assert!(!v.passed());
    assert!(v
        .text_in(Language::English)
        .contains("building the module failed: no"));
}
