using Mono.Cecil;

// Usage: Publicizer <outputDirectory> <assembly.dll>...
// Writes each assembly to outputDirectory with every type, method and field public. The copies are compile-time
// references only: the runtime still loads the original assemblies, and IgnoresAccessChecksToAttribute in the
// consuming assembly lets it use the members that are internal there.
if (args.Length < 2)
{
    Console.Error.WriteLine("Usage: Publicizer <outputDirectory> <assembly.dll>...");
    return 2;
}

string outputDirectory = args[0];
Directory.CreateDirectory(outputDirectory);
foreach (string inputPath in args.Skip(1))
{
    var resolver = new DefaultAssemblyResolver();
    resolver.AddSearchDirectory(Path.GetDirectoryName(Path.GetFullPath(inputPath))!);
    using var assembly = AssemblyDefinition.ReadAssembly(inputPath, new ReaderParameters { AssemblyResolver = resolver });
    int changed = 0;
    foreach (var module in assembly.Modules)
    {
        // The copy is not re-signed; Roslyn does not verify signatures of references.
        module.Attributes &= ~ModuleAttributes.StrongNameSigned;
        foreach (var type in module.GetTypes()) changed += Publicize(type);
    }
    string outputPath = Path.Combine(outputDirectory, Path.GetFileName(inputPath));
    assembly.Write(outputPath);
    Console.WriteLine($"Publicizer: {outputPath} ({changed} members made public)");
}
return 0;

static int Publicize(TypeDefinition type)
{
    int changed = 0;
    var visibility = type.Attributes & TypeAttributes.VisibilityMask;
    var wanted = type.IsNested ? TypeAttributes.NestedPublic : TypeAttributes.Public;
    if (visibility != wanted)
    {
        type.Attributes = (type.Attributes & ~TypeAttributes.VisibilityMask) | wanted;
        changed++;
    }

    foreach (var method in type.Methods)
    {
        if (method.IsPublic) continue;
        method.Attributes = (method.Attributes & ~MethodAttributes.MemberAccessMask) | MethodAttributes.Public;
        changed++;
    }

    // A field-like event's backing field has the event's name: making it public would make the name ambiguous in C#.
    var eventNames = type.Events.Select(e => e.Name).ToHashSet();
    foreach (var field in type.Fields)
    {
        if (field.IsPublic || eventNames.Contains(field.Name)) continue;
        field.Attributes = (field.Attributes & ~FieldAttributes.FieldAccessMask) | FieldAttributes.Public;
        changed++;
    }
    return changed;
}
