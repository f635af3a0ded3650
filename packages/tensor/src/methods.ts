// Method forms of the ops (`x.add(y)`, `x.sum(0)`, ...), attached to Tensor.
// Their types are declared on the class in tensor.ts.
import * as E from "./ops/elementwise.js";
import * as L from "./ops/layout.js";
import * as M from "./ops/matmul.js";
import * as N from "./ops/nn.js";
import * as R from "./ops/reduce.js";
import * as Rows from "./ops/rows.js";
import { Tensor } from "./tensor.js";

const P = Tensor.prototype;
P.add = function (b) {
  return E.add(this, b);
};
P.sub = function (b) {
  return E.sub(this, b);
};
P.mul = function (b) {
  return E.mul(this, b);
};
P.div = function (b) {
  return E.div(this, b);
};
P.pow = function (b) {
  return E.pow(this, b);
};
P.maximum = function (b) {
  return E.maximum(this, b);
};
P.minimum = function (b) {
  return E.minimum(this, b);
};
P.eq = function (b) {
  return E.eq(this, b);
};
P.gt = function (b) {
  return E.gt(this, b);
};
P.lt = function (b) {
  return E.lt(this, b);
};
P.ge = function (b) {
  return E.ge(this, b);
};
P.le = function (b) {
  return E.le(this, b);
};
P.neg = function () {
  return E.neg(this);
};
P.exp = function () {
  return E.exp(this);
};
P.log = function () {
  return E.log(this);
};
P.tanh = function () {
  return E.tanh(this);
};
P.gelu = function () {
  return E.gelu(this);
};
P.sqrt = function () {
  return E.sqrt(this);
};
P.rsqrt = function () {
  return E.rsqrt(this);
};
P.abs = function () {
  return E.abs(this);
};
P.relu = function () {
  return E.relu(this);
};
P.sigmoid = function () {
  return E.sigmoid(this);
};
P.square = function () {
  return E.square(this);
};
P.sum = function (axes, keepDim) {
  return R.sum(this, axes, keepDim);
};
P.mean = function (axes, keepDim) {
  return R.mean(this, axes, keepDim);
};
P.max = function (axes, keepDim) {
  return R.max(this, axes, keepDim);
};
P.min = function (axes, keepDim) {
  return R.min(this, axes, keepDim);
};
P.argmax = function (axis, keepDim) {
  return R.argmax(this, axis, keepDim);
};
P.matmul = function (b) {
  return M.matmul(this, b);
};
P.reshape = function (shape) {
  return L.reshape(this, shape);
};
P.view = function (shape) {
  return L.reshape(this, shape);
};
P.flatten = function (s, e) {
  return L.flatten(this, s, e);
};
P.unsqueeze = function (axis) {
  return L.unsqueeze(this, axis);
};
P.squeeze = function (axis) {
  return L.squeeze(this, axis);
};
P.transpose = function (a, b) {
  return L.transpose(this, a, b);
};
P.permute = function (perm) {
  return L.permute(this, perm);
};
P.slice = function (axis, start, end) {
  return L.slice(this, axis, start, end);
};
P.narrow = function (axis, start, length) {
  return L.narrow(this, axis, start, length);
};
P.expand = function (shape) {
  return L.expand(this, shape);
};
P.contiguous = function () {
  return L.contiguous(this);
};
P.indexSelect = function (idx) {
  return Rows.indexSelect(this, idx);
};
P.softmax = function () {
  return N.softmax(this);
};
P.logSoftmax = function () {
  return N.logSoftmax(this);
};
P.cast = function (dtype) {
  return N.cast(this, dtype);
};
P.to = function (device) {
  return N.to(this, device);
};
