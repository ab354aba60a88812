//! A Gaussian mixture as scored on the hot path: fitted by linfa at training time, then kept as
//! plain arrays (weights, means and the Cholesky factors of the precisions) so that scoring an
//! event allocates nothing and costs a few hundred multiply-adds.

use linfa::prelude::*;
use linfa_clustering::GaussianMixtureModel;
use ndarray::Array2;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

use super::ModelError;
use super::model::Scale;
use crate::profile::counter::exp2_neg;

/// One mixture component.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// Mixing weight.
    pub weight: f64,
    /// Mean (standardised feature space).
    pub mean: Vec<f64>,
    /// Precision matrix (inverse covariance), row-major `d × d`.
    pub precision: Vec<f64>,
}

/// A fitted mixture, as stored in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mixture {
    /// The components.
    pub components: Vec<Component>,
}

/// Components scored side by side: one lane each.
const LANES: usize = 8;

/// A mixture prepared for scoring raw feature vectors of length `D`: per component,
/// `ln w + ½ ln det P − (D/2) ln 2π`, and `U = Lᵀ·diag(1/σ)` with the offset `Lᵀ(m/σ + μ)`,
/// where `L` is the Cholesky factor of the precision (`P = L Lᵀ`) and `m`, `σ` the
/// standardisation. Then `(z − μ)ᵀ P (z − μ) = ‖U x − offset‖²` for `z = (x − m)/σ`: one
/// triangular `D × D` product per component, in `f32`.
///
/// Components are laid out in blocks of [`LANES`], coefficient by coefficient, so one pass over
/// the triangle scores a whole block with vector arithmetic; each lane still adds its terms in
/// the same order as a component scored on its own.
#[derive(Clone, Debug, PartialEq)]
pub struct Scorer<const D: usize> {
    /// Components in use.
    len: usize,
    blocks: Vec<Block<D>>,
}

/// [`LANES`] components (unused lanes have a constant of −∞).
#[derive(Clone, Debug, PartialEq)]
struct Block<const D: usize> {
    constant: [f32; LANES],
    /// `u[j][i][lane]`: row `j`, column `i` of each lane's `U` (zero for `i < j`).
    u: [[[f32; LANES]; D]; D],
    offset: [[f32; LANES]; D],
}

impl Mixture {
    /// Fits `n_components` components to the rows of `x` (standardised), with linfa's EM
    /// initialised by k-means. Deterministic for a given seed.
    pub fn fit(x: &Array2<f64>, n_components: usize, seed: u64) -> Result<Mixture, ModelError> {
        let data = DatasetBase::from(x.clone());
        let gmm =
            GaussianMixtureModel::params_with_rng(n_components, ChaCha8Rng::seed_from_u64(seed))
                .reg_covariance(0.1)
                .tolerance(1e-3)
                .max_n_iterations(200)
                .n_runs(1)
                .fit(&data)
                .map_err(|e| {
                    ModelError::Fit(format!(
                        "gaussian mixture with {n_components} components: {e}"
                    ))
                })?;
        let d = x.ncols();
        let components = (0..n_components)
            .map(|k| Component {
                weight: gmm.weights()[k],
                mean: gmm.means().row(k).to_vec(),
                precision: (0..d * d)
                    .map(|i| gmm.precisions()[[k, i / d, i % d]])
                    .collect(),
            })
            .collect();
        Ok(Mixture { components })
    }

    /// Number of free parameters (for BIC): weights, means and symmetric covariances.
    pub fn parameters(&self, dim: usize) -> usize {
        let k = self.components.len();
        (k - 1) + k * dim + k * dim * (dim + 1) / 2
    }

    /// Checks the shapes and prepares the scorer for raw vectors standardised by `scale`.
    pub fn scorer<const D: usize>(&self, scale: &Scale) -> Result<Scorer<D>, ModelError> {
        if self.components.is_empty() || self.components.len() > MAX_COMPONENTS {
            return Err(ModelError::Invalid(format!(
                "a mixture has {} components (1 to {MAX_COMPONENTS})",
                self.components.len()
            )));
        }
        let dim = D;
        let empty = Block {
            constant: [f32::NEG_INFINITY; LANES],
            u: [[[0.0; LANES]; D]; D],
            offset: [[0.0; LANES]; D],
        };
        let mut s = Scorer {
            len: self.components.len(),
            blocks: vec![empty; self.components.len().div_ceil(LANES)],
        };
        for (n, c) in self.components.iter().enumerate() {
            if c.mean.len() != dim || c.precision.len() != dim * dim {
                return Err(ModelError::Invalid(format!(
                    "a mixture component has {} means and {} precision entries; the event schema has {dim} features",
                    c.mean.len(),
                    c.precision.len()
                )));
            }
            if !(c.weight > 0.0 && c.weight.is_finite()) {
                return Err(ModelError::Invalid(format!(
                    "a mixture component has weight {}",
                    c.weight
                )));
            }
            let l = cholesky(&c.precision, dim).ok_or_else(|| {
                ModelError::Invalid(
                    "a mixture component's precision is not positive definite".into(),
                )
            })?;
            let log_det: f64 = (0..dim).map(|i| l[i * dim + i].ln()).sum::<f64>() * 2.0;
            let (block, lane) = (&mut s.blocks[n / LANES], n % LANES);
            block.constant[lane] = (c.weight.ln() + 0.5 * log_det
                - 0.5 * dim as f64 * (2.0 * std::f64::consts::PI).ln())
                as f32;
            for j in 0..dim {
                let mut off = 0.0f64;
                for i in j..dim {
                    let u = l[i * dim + j];
                    block.u[j][i][lane] = (u / scale.std[i]) as f32;
                    off += u * (scale.mean[i] / scale.std[i] + c.mean[i]);
                }
                block.offset[j][lane] = off as f32;
            }
        }
        Ok(s)
    }
}

impl<const D: usize> Scorer<D> {
    /// Log-density of a raw feature vector (in the standardised space).
    #[inline]
    pub fn log_likelihood(&self, x: &[f32; D]) -> f32 {
        let mut terms = [0.0f32; MAX_COMPONENTS];
        for (block, out) in self.blocks.iter().zip(terms.chunks_mut(LANES)) {
            let mut q = [0.0f32; LANES];
            for (j, (row, off)) in block.u.iter().zip(&block.offset).enumerate() {
                // Row `j` is zero before column `j` (the factor is triangular).
                let mut y = [0.0f32; LANES];
                for (coef, &xi) in row[j..].iter().zip(&x[j..]) {
                    for l in 0..LANES {
                        y[l] += coef[l] * xi;
                    }
                }
                for l in 0..LANES {
                    let d = y[l] - off[l];
                    q[l] += d * d;
                }
            }
            for (l, t) in out.iter_mut().enumerate() {
                *t = block.constant[l] - 0.5 * q[l];
            }
        }
        let terms = &terms[..self.len];
        let best = terms.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if !best.is_finite() {
            return best;
        }
        let sum: f32 = terms
            .iter()
            .map(|t| exp2_neg((t - best) * std::f32::consts::LOG2_E))
            .sum();
        best + super::math::ln(sum)
    }

    /// Number of components.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no components.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Lower-triangular Cholesky factor of a symmetric positive-definite row-major matrix.
fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = a[i * n + j];
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if !(sum > 0.0 && sum.is_finite()) {
                    return None;
                }
                l[i * n + i] = sum.sqrt();
            } else {
                l[i * n + j] = sum / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// Most components a mixture may have.
pub(crate) const MAX_COMPONENTS: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn unit() -> Scale {
        Scale {
            mean: vec![0.0; 2],
            std: vec![1.0; 2],
        }
    }

    /// A mixture of one component of weight 1.
    fn one(mean: [f64; 2], precision: [f64; 4]) -> Mixture {
        Mixture {
            components: vec![Component {
                weight: 1.0,
                mean: mean.to_vec(),
                precision: precision.to_vec(),
            }],
        }
    }

    fn two_blobs() -> Array2<f64> {
        let mut rows = Vec::new();
        for i in 0..400 {
            let t = i as f64 / 400.0;
            let jitter = (t * 97.0).sin() * 0.3;
            let (cx, cy) = if i % 2 == 0 { (-3.0, 0.0) } else { (3.0, 1.0) };
            rows.extend_from_slice(&[cx + jitter, cy + (t * 31.0).cos() * 0.3]);
        }
        Array2::from_shape_vec((400, 2), rows).unwrap()
    }

    #[test]
    fn the_hot_path_density_agrees_with_a_direct_computation() {
        let m = one([1.0, -1.0], [2.0, 0.5, 0.5, 1.0]);
        let s = m.scorer::<2>(&unit()).unwrap();
        let x = [0.5f32, 0.0];
        let (dx, dy) = (x[0] as f64 - 1.0, x[1] as f64 + 1.0);
        let q = 2.0 * dx * dx + 2.0 * 0.5 * dx * dy + 1.0 * dy * dy;
        let det: f64 = 2.0 * 1.0 - 0.25;
        let direct = 0.5 * det.ln() - (2.0 * std::f64::consts::PI).ln() - 0.5 * q;
        assert!((s.log_likelihood(&x) as f64 - direct).abs() < 1e-5);
    }

    #[test]
    fn a_fitted_mixture_finds_the_blobs_and_scores_outliers_low() {
        let x = two_blobs();
        let m = Mixture::fit(&x, 2, 7).unwrap();
        let s = m.scorer::<2>(&unit()).unwrap();
        let inside = s.log_likelihood(&[-3.0f32, 0.0]);
        let between = s.log_likelihood(&[0.0f32, 0.5]);
        let far = s.log_likelihood(&[10.0f32, -8.0]);
        assert!(
            inside > between && between > far,
            "{inside} {between} {far}"
        );
    }

    #[test]
    fn a_broken_precision_is_refused() {
        let m = one([0.0, 0.0], [1.0, 2.0, 2.0, 1.0]);
        assert!(matches!(
            m.scorer::<2>(&unit()),
            Err(ModelError::Invalid(_))
        ));
    }

    #[test]
    fn standardisation_is_folded_into_the_scorer() {
        let m = one([0.5, -0.5], [2.0, 0.3, 0.3, 1.0]);
        let scale = Scale {
            mean: vec![10.0, -3.0],
            std: vec![2.0, 0.5],
        };
        let raw = [13.0f32, -3.5];
        let z = [(13.0 - 10.0) / 2.0, (-3.5 + 3.0) / 0.5];
        let folded = m.scorer::<2>(&scale).unwrap().log_likelihood(&raw);
        let plain = m.scorer::<2>(&unit()).unwrap().log_likelihood(&z);
        assert!((folded - plain).abs() < 1e-4, "{folded} {plain}");
    }
}
