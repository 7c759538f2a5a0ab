//! `solids::mass_spring`: spring forces and Jacobians; both integrators on random spring
//! networks.

use crate::common::*;

#[test]
fn spring_force_jacobians_match_finite_differences() {
    let (m, x, _) = cage();
    let v: Vec<V3> = (0..m.len()).map(|p| [0.3 * p as f64, -0.2, 0.1]).collect();
    let s = &m.springs[3];
    let (jd, jw) = m.spring_jacobians(s, &x, Some(&v));
    let eps = 1e-7;
    for b in 0..3 {
        let (mut xp, mut xm, mut vp, mut vm) = (x.clone(), x.clone(), v.clone(), v.clone());
        xp[s.i][b] += eps;
        xm[s.i][b] -= eps;
        vp[s.i][b] += eps;
        vm[s.i][b] -= eps;
        let (fxp, fxm) = (
            m.spring_force(s, &xp, Some(&v)),
            m.spring_force(s, &xm, Some(&v)),
        );
        let (fvp, fvm) = (
            m.spring_force(s, &x, Some(&vp)),
            m.spring_force(s, &x, Some(&vm)),
        );
        for a in 0..3 {
            assert!((jd[a][b] - (fxp[a] - fxm[a]) / (2.0 * eps)).abs() < 1e-6);
            assert!((jw[a][b] - (fvp[a] - fvm[a]) / (2.0 * eps)).abs() < 1e-6);
        }
    }
    // Energy gradient = −force on particle i.
    let mut f = vec![[0.0; 3]; m.len()];
    m.add_elastic_forces(0, &x, &mut f);
    let mut xp = x.clone();
    xp[0][1] += 1e-7;
    let mut xm = x.clone();
    xm[0][1] -= 1e-7;
    let de = (m.energy(0, &xp) - m.energy(0, &xm)) / 2e-7;
    assert!((de + f[0][1]).abs() < 1e-6, "{de} vs {}", -f[0][1]);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
    /// Explicit and implicit adjoints equal central differences on random networks.
    #[test]
    fn adjoints_match_finite_differences_on_random_networks(
        seed in proptest::collection::vec(-1.0f64..1.0, 12),
        n in 3usize..7,
    ) {
        let (m, x0) = random_network(&seed, n);
        let target = [0.1, 0.2, -0.1];
        let zero = vec![[0.0; 3]; m.len()];
        let dt = 1.0 / 60.0;
        let run = explicit::rollout(&m, &x0, &zero, dt, 20);
        let g = explicit::adjoint(&m, &run, dt, &loss(&run.last().0, target).1, &zero);
        check("random explicit", &m, &x0, &g, &|m, x, v| {
            loss(&explicit::rollout(m, x, v, dt, 20).last().0, target).0
        });
        let sim = Implicit::new(&m, dt, NewtonConfig::default()).unwrap();
        let r = sim.rollout(&x0, &zero, 20).unwrap();
        let g = sim.adjoint(&r, &loss(&r.run.last().0, target).1, &zero);
        check("random implicit", &m, &x0, &g, &|m, x, v| {
            let sim = Implicit::new(m, dt, NewtonConfig::default()).unwrap();
            loss(&sim.rollout(x, v, 20).unwrap().run.last().0, target).0
        });
    }
}
