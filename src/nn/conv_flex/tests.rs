//! The kernels against the definitions of the convolution and its gradients, in every build.

use super::*;

/// The 'same' convolution by its definition (f64, zero outside the planes).
fn naive(x: &[f64], w: &[f64], bias: &[f64], s: ConvShape) -> Vec<f64> {
    naive_padded(x, w, bias, s, Padding::Zero)
}

/// The 'same' convolution by its definition (f64): outside the planes zero, or the nearest
/// value of the plane.
fn naive_padded(x: &[f64], w: &[f64], bias: &[f64], s: ConvShape, padding: Padding) -> Vec<f64> {
    let p = s.k as isize / 2;
    let mut out = vec![0.0; s.b * s.co * s.h * s.w];
    for b in 0..s.b {
        for o in 0..s.co {
            for y in 0..s.h {
                for xx in 0..s.w {
                    let mut acc = bias[o];
                    for i in 0..s.ci {
                        for ky in 0..s.k {
                            for kx in 0..s.k {
                                let (mut iy, mut ix) =
                                    (y as isize + ky as isize - p, xx as isize + kx as isize - p);
                                if padding == Padding::Edge {
                                    iy = iy.clamp(0, s.h as isize - 1);
                                    ix = ix.clamp(0, s.w as isize - 1);
                                }
                                if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize {
                                    continue;
                                }
                                acc += w[((o * s.ci + i) * s.k + ky) * s.k + kx]
                                    * x[((b * s.ci + i) * s.h + iy as usize) * s.w + ix as usize];
                            }
                        }
                    }
                    out[((b * s.co + o) * s.h + y) * s.w + xx] = acc;
                }
            }
        }
    }
    out
}

fn values(n: usize, seed: f64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 * 0.7548 + seed).sin() * 1e4).fract())
        .collect()
}

/// Odd shapes: channels not a multiple of the block, rows not a multiple of the lanes,
/// kernels 1, 3 and 5.
fn shapes() -> Vec<ConvShape> {
    vec![
        ConvShape {
            b: 2,
            ci: 3,
            co: 5,
            h: 7,
            w: 9,
            k: 5,
        },
        ConvShape {
            b: 1,
            ci: 2,
            co: 2,
            h: 4,
            w: 20,
            k: 3,
        },
        ConvShape {
            b: 3,
            ci: 4,
            co: 4,
            h: 5,
            w: 16,
            k: 1,
        },
    ]
}

#[test]
fn forward_equals_the_definition_in_f64_and_f32() {
    for s in shapes() {
        let x = values(s.b * s.ci * s.h * s.w, 0.1);
        let w = values(s.co * s.ci * s.k * s.k, 0.2);
        let bias = values(s.co, 0.3);
        let want = naive(&x, &w, &bias, s);
        for simd in Build::available() {
            let got = forward_on(&x, &w, Some(&bias), s, simd);
            assert_eq!(got.len(), want.len());
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-12, "{s:?} {simd:?}: {a} vs {b}");
            }
            let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
            let got32 = forward_on(&f(&x), &f(&w), Some(&f(&bias)), s, simd);
            for (a, b) in got32.iter().zip(&want) {
                assert!(
                    (f64::from(*a) - b).abs() <= 1e-4,
                    "{s:?} f32 {simd:?}: {a} vs {b}"
                );
            }
        }
    }
}

/// `⟨g, conv(x, w)⟩` is linear in `w`, so its gradient is exact from the definition: the
/// weight gradient equals the forward's response to each unit weight.
#[test]
fn weight_gradient_equals_the_definition() {
    for s in shapes() {
        let x = values(s.b * s.ci * s.h * s.w, 0.4);
        let g = values(s.b * s.co * s.h * s.w, 0.5);
        let zero = vec![0.0; s.co];
        let builds: Vec<Vec<f64>> = Build::available()
            .into_iter()
            .map(|b| weight_gradient_on(&x, &g, s, b))
            .collect();
        for t in 0..s.co * s.ci * s.k * s.k {
            let mut e = vec![0.0; s.co * s.ci * s.k * s.k];
            e[t] = 1.0;
            let want: f64 = naive(&x, &e, &zero, s)
                .iter()
                .zip(&g)
                .map(|(a, b)| a * b)
                .sum();
            for got in &builds {
                assert!(
                    (got[t] - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "{s:?} tap {t}"
                );
            }
        }
    }
}

/// Every gradient of a layer against its definition: the activation's mask, the bias
/// sums, and the weight and input gradients as the responses of `⟨∂z, conv(x, w)⟩` (linear
/// in each) to unit weights and unit inputs; with and without the activation, in every
/// build, with zero and edge padding, including channel counts that are not whole blocks.
#[test]
fn layer_backward_equals_the_definition() {
    for (s, padding) in shapes()
        .into_iter()
        .flat_map(|s| [(s, Padding::Zero), (s, Padding::Edge)])
    {
        let x = values(s.b * s.ci * s.h * s.w, 0.6);
        let w = values(s.co * s.ci * s.k * s.k, 0.7);
        let g = values(s.b * s.co * s.h * s.w, 0.8);
        let y = values(s.b * s.co * s.h * s.w, 0.9);
        let zero = vec![0.0; s.co];
        for act in [None, Some((&y[..], 0.3))] {
            let gz: Vec<f64> = match act {
                Some((y, a)) => g
                    .iter()
                    .zip(y)
                    .map(|(&g, &y)| if y > 0.0 { g } else { a * g })
                    .collect(),
                None => g.clone(),
            };
            let dot = |v: Vec<f64>| v.iter().zip(&gz).map(|(a, b)| a * b).sum::<f64>();
            let unit = |n: usize, t: usize| {
                let mut e = vec![0.0; n];
                e[t] = 1.0;
                e
            };
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
            let naive = |x: &[f64], w: &[f64]| naive_padded(x, w, &zero, s, padding);
            for build in Build::available() {
                let got = layer_backward_on(&x, &w, act, &g, s, padding, [true, true], build);
                assert_eq!(got.z.as_deref(), Some(&gz[..]), "{s:?} {build:?}");
                for (o, &b) in got.bias.iter().enumerate() {
                    let want: f64 = gz.chunks(s.h * s.w).skip(o).step_by(s.co).flatten().sum();
                    assert!(close(b, want), "{s:?} {build:?} bias {o}");
                }
                for (t, &v) in got.w.iter().enumerate() {
                    let want = dot(naive(&x, &unit(w.len(), t)));
                    assert!(close(v, want), "{s:?} {padding:?} {build:?} weight {t}");
                }
                let gx = got.x.expect("asked for");
                for (t, &v) in gx.iter().enumerate() {
                    let want = dot(naive(&unit(x.len(), t), &w));
                    assert!(close(v, want), "{s:?} {padding:?} {build:?} input {t}");
                }
                let lean = layer_backward_on(&x, &w, act, &g, s, padding, [false, false], build);
                assert!(lean.z.is_none() && lean.x.is_none());
                assert_eq!(lean.w, got.w);
            }
        }
    }
}

/// The layer's forward with the activation applied by the tasks equals the definition, with
/// and without a residual, with zero and edge padding.
#[test]
fn forward_act_equals_the_definition() {
    for (s, padding) in shapes()
        .into_iter()
        .flat_map(|s| [(s, Padding::Zero), (s, Padding::Edge)])
    {
        let x = values(s.b * s.ci * s.h * s.w, 1.1);
        let w = values(s.co * s.ci * s.k * s.k, 1.2);
        let bias = values(s.co, 1.3);
        let r = values(s.b * s.co * s.h * s.w, 1.4);
        let z = naive_padded(&x, &w, &bias, s, padding);
        for residual in [None, Some(&r[..])] {
            let got = forward_act(&x, &w, &bias, residual, 0.3, s, padding);
            for (t, (&a, &z)) in got.iter().zip(&z).enumerate() {
                let z = z + residual.map_or(0.0, |r| r[t]);
                let want = if z > 0.0 { z } else { 0.3 * z };
                assert!((a - want).abs() <= 1e-12, "{s:?} {t}: {a} vs {want}");
            }
        }
    }
}
