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

export function declaredOps(): Map<string, DeclaredOp> {
  const interfaces = new Map<string, ts.InterfaceDeclaration>();
  for (const file of fs.readdirSync(nativeDir).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))) {
    const src = ts.createSourceFile(file, fs.readFileSync(path.join(nativeDir, file), "utf8"), ts.ScriptTarget.ES2022, true);
    src.forEachChild((node) => {
      if (ts.isInterfaceDeclaration(node)) interfaces.set(node.name.text, node);
    });
  }
  const ops = new Map<string, DeclaredOp>();
  const visit = (name: string) => {
    const decl = interfaces.get(name);
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
