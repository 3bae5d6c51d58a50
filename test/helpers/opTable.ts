import * as fs from "node:fs";
import * as path from "node:path";
import ts from "typescript";

const nativeDir = path.resolve(__dirname, "..", "..", "lib", "tensor", "native");

/**
 * The op table as declared by the TypeScript interface files in lib/tensor/native/: the members of NativeOps
 * and of every interface it extends, parsed with the TypeScript compiler.
 */
export interface DeclaredParam {
  name: string;
  type: string;
  optional: boolean;
}

export interface DeclaredOp {
  iface: string;
  params: DeclaredParam[];
}

function interfaces(): Map<string, ts.InterfaceDeclaration> {
  const found = new Map<string, ts.InterfaceDeclaration>();
  for (const file of fs.readdirSync(nativeDir).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))) {
    const src = ts.createSourceFile(file, fs.readFileSync(path.join(nativeDir, file), "utf8"), ts.ScriptTarget.ES2022, true);
    src.forEachChild((node) => {
      if (ts.isInterfaceDeclaration(node)) found.set(node.name.text, node);
    });
  }
  return found;
}

/** The members of one interface of lib/tensor/native/ and of every interface it extends. */
export function interfaceMembers(name: string): string[] {
  const all = interfaces();
  const out: string[] = [];
  const visit = (n: string) => {
    const decl = all.get(n);
    if (!decl) throw new Error(`interface ${n} is not declared in lib/tensor/native/`);
    for (const clause of decl.heritageClauses ?? []) for (const t of clause.types) visit(t.expression.getText());
    for (const m of decl.members) if (m.name) out.push(m.name.getText());
  };
  visit(name);
  return out;
}

/** The op families: each interface NativeOps extends (CoreOps, NnOps, DataOps, ...) with its ops. */
export function declaredFamilies(): Map<string, string[]> {
  const decl = interfaces().get("NativeOps");
  if (!decl) throw new Error("NativeOps is not declared in lib/tensor/native/");
  const families = new Map<string, string[]>();
  for (const clause of decl.heritageClauses ?? [])
    for (const t of clause.types) families.set(t.expression.getText(), interfaceMembers(t.expression.getText()));
  return families;
}

export function declaredOps(): Map<string, DeclaredOp> {
  const interfaces_ = interfaces();
  const ops = new Map<string, DeclaredOp>();
  const visit = (name: string) => {
    const decl = interfaces_.get(name);
    if (!decl) throw new Error(`interface ${name} is not declared in lib/tensor/native/`);
    for (const clause of decl.heritageClauses ?? []) for (const t of clause.types) visit(t.expression.getText());
    for (const m of decl.members) {
      if (!m.name) continue;
      const params = ts.isMethodSignature(m) ? [...m.parameters] : [];
      ops.set(m.name.getText(), {
        iface: name,
        params: params.map((p) => ({ name: p.name.getText(), type: p.type?.getText() ?? "unknown", optional: !!p.questionToken })),
      });
    }
  };
  visit("NativeOps");
  return ops;
}
